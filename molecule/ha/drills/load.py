"""The drills' load: subscribers through nginx and a numbered publisher, with the tallies each
drill reports.

Subscribers (rtclient.centrifugo, session-cookie auth through Centrifugo's connect and subscribe
proxies) connect through nginx's published port and subscribe to one ``rooms:`` channel (history
and recovery on: ``force_recovery``, https://centrifugal.dev/docs/getting-started/recovery); a
publisher sends ``{"seq": n, "text": ...}`` every ``interval`` seconds through Centrifugo's HTTP API
(rtclient.publish, falling over to the next node when one does not answer). Times are
``time.monotonic()`` seconds; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import time
from typing import Sequence

from rtclient.centrifugo import CentrifugoConnection, Subscriber
from rtclient.publish import CentrifugoPublisher, PublishError

#: Subscribers (all from this machine's one address: within nginx's per-address limits).
CLIENTS = 30
#: Seconds between two publications.
PUBLISH_INTERVAL = 0.1
#: An existing room (the subscribe proxy refuses unknown rooms); API publications bypass the
#: publish proxy, so the drill messages are not stored in the room.
CHANNEL = "rooms:lobby"


class Load:
    """``clients`` subscribers of ``channel`` at ``ws_url`` and a publisher every ``interval``
    seconds over ``api_urls`` (failover). ``acked`` maps seq -> the time the API acknowledged it,
    ``failed`` seq -> the error when every node refused it.

    Args:
        ws_url: Centrifugo's WebSocket through nginx (``wss://127.0.0.1:28443/connection/websocket``).
        origin: the site's origin, sent as ``Origin``; ca_file: the test CA.
        api_urls: every node's server API URL (the manifest's ``api_url``); api_key: its key.
        cookie: a logged-in user's ``Cookie`` header.
    """

    def __init__(self, ws_url: str, origin: str, ca_file: str, api_urls: Sequence[str], api_key: str,
                 cookie: str, clients: int = CLIENTS, channel: str = CHANNEL,
                 interval: float = PUBLISH_INTERVAL) -> None:
        self.ws_url, self.origin, self.ca_file, self.cookie = ws_url, origin, ca_file, cookie
        self.count, self.channel, self.interval = clients, channel, interval
        self.publisher = CentrifugoPublisher(api_urls, api_key, channel, timeout=2.0)
        self.connections: list[CentrifugoConnection] = []
        self.subscribers: list[Subscriber] = []
        self.acked: dict[int, float] = {}
        self.failed: dict[int, str] = {}
        self.seq = 0
        self._publishing: asyncio.Task | None = None

    async def connect(self) -> None:
        """Connect every subscriber and wait (30 s) until all are subscribed."""
        for _ in range(self.count):
            connection = CentrifugoConnection(self.ws_url, cookie=self.cookie, origin=self.origin,
                                              ca_file=self.ca_file, timeout=10.0, max_reconnect_delay=2.0)
            self.connections.append(connection)
            await connection.connect(wait=False)
            self.subscribers.append(await connection.subscribe(self.channel, subscriber=Subscriber(keep=False),
                                                               wait=False))
        await self.wait_all_subscribed(30)

    async def _publish_one(self, seq: int) -> None:
        try:
            await self.publisher.send({"seq": seq, "text": f"drill message {seq}"})
        except PublishError as exc:
            self.failed[seq] = str(exc)
            return
        self.failed.pop(seq, None)
        self.acked[seq] = time.monotonic()

    async def _publish(self) -> None:
        next_at = time.monotonic()
        while True:
            self.seq += 1
            asyncio.ensure_future(self._publish_one(self.seq))
            next_at += self.interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    def start_publishing(self) -> None:
        """Publish the next numbered message every ``interval`` seconds until stopped."""
        self._publishing = asyncio.ensure_future(self._publish())

    async def stop_publishing(self, drain: float = 5.0) -> None:
        """Stop, then wait (at most ``drain`` s) until every acknowledged message has arrived."""
        if self._publishing:
            self._publishing.cancel()
            self._publishing = None
        await asyncio.sleep(1.0)
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline and self.lost(min(self.acked, default=0)):
            await asyncio.sleep(0.2)

    def tally(self, since_seq: int) -> dict[str, int]:
        """The drill window's counts from ``since_seq`` on: publications acknowledged, publications
        refused by every node, messages lost (acknowledged, never received; summed over clients)
        and clients that lost any."""
        lost = self.lost(since_seq)
        return {"published": len([seq for seq in self.acked if seq >= since_seq]),
                "publish_errors": len([seq for seq in self.failed if seq >= since_seq]),
                "lost": sum(len(seqs) for seqs in lost.values()), "clients_with_losses": len(lost)}

    def lost(self, since_seq: int) -> dict[int, list[int]]:
        """Client index -> acknowledged seqs >= since_seq it did not receive."""
        acked = [seq for seq in self.acked if seq >= since_seq]
        out = {}
        for index, subscriber in enumerate(self.subscribers):
            missing = sorted(seq for seq in acked if seq not in subscriber.received)
            if missing:
                out[index] = missing
        return out

    def resubscribe_times(self, since: float) -> list[float]:
        """For every client that lost its subscription after ``since``: seconds from ``since``
        until it was subscribed again (inf if it was not)."""
        times = []
        for subscriber in self.subscribers:
            if any(t >= since for t in subscriber.subscribing):
                back = [s.at for s in subscriber.subscribed if s.at >= since]
                times.append((back[-1] - since) if back and subscriber.ready.is_set() else float("inf"))
        return times

    def outages(self, since: float) -> list[float]:
        """Seconds each subscription lost after ``since`` took to be subscribed again."""
        out = []
        for subscriber in self.subscribers:
            for lost_at in (t for t in subscriber.subscribing if t >= since):
                back = [s.at for s in subscriber.subscribed if s.at >= lost_at]
                out.append(back[0] - lost_at if back else float("inf"))
        return out

    def recovered_flags(self, since: float) -> list[bool]:
        """``recovered`` of every resubscription after ``since`` that attempted a recovery."""
        return [s.recovered for subscriber in self.subscribers
                for s in subscriber.subscribed if s.at >= since and s.was_recovering]

    def disconnects(self, since: float) -> int:
        """Client disconnects plus subscriptions lost after ``since``."""
        return sum(1 for connection in self.connections for d in connection.events.disconnects if d.at >= since) + \
            sum(1 for subscriber in self.subscribers for t in subscriber.subscribing if t >= since)

    async def wait_moved(self, since: float, count: int, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until ``count`` clients lost their subscription after ``since``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(1 for s in self.subscribers if any(t >= since for t in s.subscribing)) >= count:
                return
            await asyncio.sleep(0.05)

    async def delivery_resumed(self, after: float, every_client: bool, timeout: float) -> float:
        """Seconds from ``after`` until a message acknowledged after ``after`` reached the first
        client (or every client); inf when not within ``timeout`` seconds. Publishing must run."""
        deadline = after + timeout
        while time.monotonic() < deadline:
            fresh = {seq for seq, t in self.acked.items() if t > after}
            times = [min((s.received[seq] for seq in fresh if seq in s.received), default=None)
                     for s in self.subscribers]
            got = [t for t in times if t is not None]
            if got and (not every_client or len(got) == len(times)):
                return (max(got) if every_client else min(got)) - after
            await asyncio.sleep(0.1)
        return float("inf")

    async def wait_all_subscribed(self, timeout: float) -> None:
        """Wait until every subscriber is subscribed; ``asyncio.TimeoutError`` after ``timeout`` s."""
        await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in self.subscribers)), timeout)

    async def close(self) -> None:
        for connection in self.connections:
            await connection.close()
        await self.publisher.close()
