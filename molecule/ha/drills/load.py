"""The drills' load: chat messages posted through Django, received by Centrifugo subscribers that
fill their gaps from the database, with the tallies each drill reports.

- **Posts** (rtclient.publish.DjangoPoster): ``drill message <n>`` every ``interval`` seconds to the
  room, through nginx and gunicorn, as a user without JavaScript. A 201 answer means a committed row
  (and, with PostgreSQL, its outbox publication); its room number ``seq`` is what subscribers count.
- **Subscribers** (rtclient.centrifugo, session-cookie auth through Centrifugo's connect and subscribe
  proxies): ``clients`` connections through nginx, subscribed to ``rooms:<room>`` with history and
  recovery. Like the room page (chat.js), each fills gaps from the database (rtclient.history) on every
  resubscribe and when a live message's ``seq`` skips one; nothing else, so a message lost without a
  sign stays lost and is counted.
- **Lost**: a committed row of the window (the database says which, at the end) that a subscriber got
  neither live nor by a gap fill.

Times are ``time.monotonic()`` seconds; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rtclient.auth import SessionCookies
from rtclient.centrifugo import CentrifugoConnection, Subscribed, Subscriber, describe_transitions
from rtclient.history import fetch_messages_after
from rtclient.publish import DjangoPoster, PostError

#: Subscribers (all from this machine's one address: within nginx's per-address limits).
CLIENTS = 30
#: Seconds between two posts.
PUBLISH_INTERVAL = 0.1
#: Seconds over which the clients spread the gap fills that follow a resubscribe (a node's clients
#: all resubscribe at once: without a spread, their fills reach Django at once too).
RESUBSCRIBE_FILL_JITTER = 1.0
#: An existing public room.
ROOM = "lobby"
#: Seconds a post may take before it counts as refused (status 0).
POST_TIMEOUT = 30.0
TEXT = re.compile(r"^drill message (\d+)$")
#: Seconds the tally's database read may take (one page), above nginx's default proxy_read_timeout of 60 s.
TALLY_TIMEOUT = 75.0


class Client:
    """One subscriber and its gap fills: ``filled`` maps seq -> when a gap fill brought it,
    ``max_id`` is the highest message id it holds, ``fills`` counts the fills it ran."""

    def __init__(self, load: "Load") -> None:
        self.load = load
        self.subscriber = Subscriber(keep=False, on_data=self._on_data, on_subscribed=self._on_subscribed)
        self.connection: CentrifugoConnection | None = None
        self.filled: dict[int, float] = {}
        self.max_id = 0
        self.max_seq = 0
        self.fills = 0
        self._subscriptions = 0
        self._filling: asyncio.Task | None = None
        self._next_after: int | None = None  # a fill asked for during a fill: from this id

    def has(self, seq: int) -> bool:
        return seq in self.subscriber.received or seq in self.filled

    def _on_data(self, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("seq"), int):
            return
        before = self.max_id
        self.max_id = max(self.max_id, int(data.get("id") or 0))
        if self.max_seq and data["seq"] > self.max_seq + 1:
            self.fill(before)
        self.max_seq = max(self.max_seq, data["seq"])

    def _on_subscribed(self, record: Subscribed) -> None:
        self._subscriptions += 1
        if self._subscriptions > 1:  # a resubscribe: whatever the recovery said, ask the database
            self.fill(self.max_id, jitter=RESUBSCRIBE_FILL_JITTER)

    def fill(self, after_id: int, jitter: float = 0.0) -> None:
        """Fetch the room's messages after ``after_id`` from Django, after a random wait of up to
        ``jitter`` seconds (one fill at a time; a request during a fill runs once more after it, from
        the smaller id)."""
        if self._filling and not self._filling.done():
            self._next_after = after_id if self._next_after is None else min(after_id, self._next_after)
            return
        self._filling = asyncio.ensure_future(self._fill(after_id, jitter))

    async def _fill(self, after_id: int, jitter: float = 0.0) -> None:
        await asyncio.sleep(random.uniform(0.0, jitter))
        while True:
            self.fills += 1
            for attempt in range(30):  # the database or Django may be down for a while: retry, bounded
                try:
                    messages = await fetch_messages_after(self.load.site_url, self.load.room, after_id,
                                                          self.load.cookie, self.load.ca_file, timeout=5.0)
                    break
                except Exception:  # noqa: BLE001 - not yet
                    await asyncio.sleep(min(0.5 * (attempt + 1), 3.0))
            else:
                messages = []
            now = time.monotonic()
            for message in messages:
                seq = message.get("seq")
                if isinstance(seq, int) and seq not in self.subscriber.received:
                    self.filled.setdefault(seq, now)
                self.max_id = max(self.max_id, message["id"])
                self.max_seq = max(self.max_seq, seq or 0)
            if self._next_after is None:
                return
            after_id, self._next_after = self._next_after, None


class Load:
    """``clients`` subscribers of ``room`` at ``ws_url`` and a poster every ``interval`` seconds.

    Args:
        ws_url: Centrifugo's WebSocket through nginx (``wss://127.0.0.1:28443/connection/websocket``).
        site_url: the site's origin (sent as ``Origin``; posts and gap fills go there).
        ca_file: the test CA. cookie, csrf_token: a logged-in user's cookies (``auth.SessionCookies``, which
            follow Set-Cookie like a browser, or a ``Cookie`` header) and CSRF token.

    ``acked`` maps seq -> the time Django answered 201, ``posts`` n -> ``(status, seq or None)`` of
    every post (status 0: no answer), ``sent_at`` n -> when it was sent, ``posts_at`` n -> when its answer came.
    """

    def __init__(self, ws_url: str, site_url: str, ca_file: str, cookie: "str | SessionCookies", csrf_token: str,
                 clients: int = CLIENTS, room: str = ROOM, interval: float = PUBLISH_INTERVAL) -> None:
        self.ws_url, self.site_url, self.ca_file, self.cookie = ws_url, site_url, ca_file, cookie
        self.count, self.room, self.channel, self.interval = clients, room, f"rooms:{room}", interval
        # A post answered late is a delayed message, not a refused one: on a 2-core host running the stack, the
        # load and a playbook at once, a commit can wait seconds for the disk. 30 s still catches a hung request.
        self.poster = DjangoPoster(site_url, room, cookie, csrf_token, ca_file, timeout=POST_TIMEOUT)
        self.clients: list[Client] = []
        self.acked: dict[int, float] = {}
        self.posts: dict[int, tuple[int, int | None]] = {}
        self.sent_at: dict[int, float] = {}
        self.posts_at: dict[int, float] = {}
        #: n -> why a post got no answer (the exception's type: a timeout, a closed connection).
        self.post_errors: dict[int, str] = {}
        #: The most seconds this process's event loop woke late for a post since the last window began (a stalled
        #: client, not a slow server).
        self.max_loop_lag = 0.0
        self.n = 0
        self.max_posted_id = 0
        self._publishing: asyncio.Task | None = None
        self._inflight: set[asyncio.Future] = set()

    @property
    def subscribers(self) -> list[Subscriber]:
        return [client.subscriber for client in self.clients]

    @property
    def connections(self) -> list[CentrifugoConnection]:
        return [client.connection for client in self.clients if client.connection]

    async def connect(self) -> None:
        """Connect every subscriber and wait (30 s) until all are subscribed. Each starts from the
        room's newest message in the database, as the room page starts from its rendered history."""
        newest = await self.last_id()
        for _ in range(self.count):
            client = Client(self)
            client.max_id = newest
            client.connection = CentrifugoConnection(self.ws_url, cookie=self.cookie, origin=self.site_url,
                                                     ca_file=self.ca_file, timeout=10.0, max_reconnect_delay=2.0)
            self.clients.append(client)
            await client.connection.connect(wait=False)
            await client.connection.subscribe(self.channel, subscriber=client.subscriber, wait=False)
        await self.wait_all_subscribed(30)

    async def last_id(self) -> int:
        """The id of the room's newest message in the database now (0: none): the highest this load
        has seen, else (the first window) the database's, read page by page."""
        known = max([self.max_posted_id] + [c.max_id for c in self.clients])
        if known:
            return known
        messages = await fetch_messages_after(self.site_url, self.room, 0, self.cookie, self.ca_file,
                                              timeout=10.0, max_pages=1000)
        return messages[-1]["id"] if messages else 0

    async def _post(self, n: int) -> None:
        self.sent_at[n] = time.monotonic()
        try:
            message = await self.poster.send({"text": f"drill message {n}"})
        except PostError as exc:
            self.posts[n] = (exc.status, None)
            if exc.status == 0:
                self.post_errors[n] = str(exc.body).partition(":")[0]
            self.posts_at[n] = time.monotonic()
            return
        self.posts_at[n] = time.monotonic()
        self.posts[n] = (201, message["seq"])
        self.acked[message["seq"]] = time.monotonic()
        self.max_posted_id = max(self.max_posted_id, message["id"])

    async def _publish(self) -> None:
        next_at = time.monotonic()
        while True:
            self.n += 1
            task = asyncio.ensure_future(self._post(self.n))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            next_at += self.interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            self.max_loop_lag = max(self.max_loop_lag, time.monotonic() - next_at)

    async def start_window(self) -> "Window":
        """Start posting (if not yet) and open a drill window from the database's newest message. The loop's lag
        is measured again from here, so that a window reports its own (an earlier drill's synchronous steps
        stopped the loop while it posted)."""
        window = Window(self, await self.last_id(), self.n + 1, time.monotonic())
        self.max_loop_lag = 0.0
        if self._publishing is None:
            self._publishing = asyncio.ensure_future(self._publish())
        return window

    async def stop_publishing(self, drain: float = 10.0) -> None:
        """Stop posting, wait for the posts in flight, then (at most ``drain`` s) until every
        acknowledged message reached every subscriber by either path."""
        if self._publishing:
            self._publishing.cancel()
            self._publishing = None
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=15)
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline and any(not c.has(seq) for seq in self.acked for c in self.clients):
            await asyncio.sleep(0.2)

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
        client (or every client) live; inf when not within ``timeout`` seconds. Posting must run."""
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
        """Wait until every subscriber is subscribed. Raises ``asyncio.TimeoutError`` after ``timeout`` s,
        naming each client still not subscribed with its connection's and subscription's states and last
        transitions (codes and reasons from Centrifugo or the client)."""
        try:
            await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in self.subscribers)), timeout)
        except asyncio.TimeoutError:
            now = time.monotonic()
            waiting = [f"client {i}: {c.connection.client.state.value}, {c.subscriber.subscription.state.value}; "
                       f"connection [{describe_transitions(c.connection.events.transitions, now)}]; "
                       f"subscription [{describe_transitions(c.subscriber.transitions, now)}]"
                       for i, c in enumerate(self.clients) if not c.subscriber.ready.is_set()]
            raise asyncio.TimeoutError(f"{len(waiting)} of {len(self.clients)} clients not subscribed after "
                                       f"{timeout} s:\n" + "\n".join(waiting)) from None

    async def close(self) -> None:
        for connection in self.connections:
            await connection.close()
        await self.poster.close()


def cpu_times() -> tuple[int, int]:
    """(steal, total) CPU time of this machine since boot, in clock ticks (/proc/stat's ``cpu`` line): the test
    hosts are containers on its kernel, so this is what the whole stack got. Steal is time the hypervisor gave to
    other guests: a drill whose window lost much of it ran on fewer cores than the machine has."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[7], sum(fields[:8])


class Window:
    """One drill's stretch of the load: from the database's message ``first_id`` (exclusive) and
    post number ``first_n`` on. :meth:`tally` asks the database what was committed meanwhile."""

    def __init__(self, load: Load, after_id: int, first_n: int, started: float) -> None:
        self.load, self.after_id, self.first_n, self.started = load, after_id, first_n, started
        self.cpu_before = cpu_times()
        self.duplicates_before = sum(c.subscriber.duplicates for c in load.clients)
        self.fills_before = sum(c.fills for c in load.clients)

    async def tally(self) -> dict[str, Any]:
        """The window's figures: posts sent, acknowledged (201), refused (status -> count, and the first and last
        refused post's sending time from the window's start); rows
        committed (the database); half-saved (a refused post whose row exists); lost (committed rows
        a client got by neither path, summed over clients), clients with losses, delivered by a gap
        fill only, live duplicates, and live arrivals out of order. ``lost_seqs`` lists a few. Also the
        machine's CPU steal over the window, in percent (:func:`cpu_times`)."""
        load = self.load
        # Longer than nginx's proxy_read_timeout (60 s): a GET that nginx sent on a kept-alive connection to a
        # killed Django host gets no answer (no RST from a vanished host) until nginx gives up and passes it
        # to the next server. The tally reads the truth; that wait is not what a drill measures.
        rows = await fetch_messages_after(load.site_url, load.room, self.after_id, load.cookie, load.ca_file,
                                          timeout=TALLY_TIMEOUT, max_pages=1000)
        committed = {row["seq"]: row for row in rows}
        saved_n = {int(m.group(1)) for row in rows if (m := TEXT.match(row["text"]))}
        posts = {n: result for n, result in load.posts.items() if n >= self.first_n}
        refused: dict[str, int] = {}
        for status, seq in posts.values():
            if seq is None:
                refused[str(status)] = refused.get(str(status), 0) + 1
        steal, total = (after - before for after, before in zip(cpu_times(), self.cpu_before))
        refused_sent = [load.sent_at[n] - self.started for n, (_, seq) in posts.items() if seq is None]
        half_saved = sorted(n for n, (status, seq) in posts.items() if seq is None and status != 0 and n in saved_n)
        lost = {i: sorted(seq for seq in committed if not c.has(seq)) for i, c in enumerate(load.clients)}
        lost = {i: seqs for i, seqs in lost.items() if seqs}
        gap_filled = sum(1 for c in load.clients for seq in committed if seq in c.filled and seq not in c.subscriber.received)
        out_of_order = 0
        for c in load.clients:
            live = [seq for seq in c.subscriber.arrivals if seq in committed]
            out_of_order += sum(1 for a, b in zip(live, live[1:]) if b < a)
        return {"posted": len(posts), "acknowledged": sum(1 for _, seq in posts.values() if seq is not None),
                "refused": refused,
                "no_answer_reasons": dict(Counter(load.post_errors[n] for n in posts if n in load.post_errors)),
                # When the refused posts were sent, in seconds from the window's start: which step of the drill.
                "refused_sent_s": [round(min(refused_sent), 1), round(max(refused_sent), 1)] if refused_sent else [],
                "client_loop_max_lag_s": round(load.max_loop_lag, 2),
                "cpu_steal_pct": round(100.0 * steal / total, 1) if total else 0.0, "committed": len(committed), "half_saved": len(half_saved),
                "lost": sum(len(seqs) for seqs in lost.values()), "clients_with_losses": len(lost),
                "lost_seqs": sorted({seq for seqs in lost.values() for seq in seqs})[:20],
                "delivered_by_gap_fill": gap_filled,
                "gap_fills": sum(c.fills for c in load.clients) - self.fills_before,
                "duplicates": sum(c.subscriber.duplicates for c in load.clients) - self.duplicates_before,
                "out_of_order": out_of_order}
