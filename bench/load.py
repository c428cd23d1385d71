"""The benchmark's load machinery, over rtclient's real clients: the delivery tally, payloads,
percentiles, opening and closing thousands of connections, publishing at a rate.

- Centrifugo path: rtclient.centrifugo clients on nginx's ``/connection/websocket``,
  authenticated by the Django session cookie (connect proxy) or by a connection JWT from
  ``/chat/token/``; publications go in through Centrifugo's server HTTP API
  (rtclient.publish.CentrifugoPublisher), as Django's ``publish()`` sends them.
- Channels path: rtclient.channels clients on nginx's ``/ws/chat/<room>/``; publications go in
  through the channel layer's ``group_send`` (rtclient.publish.ChannelsPublisher, the app's Redis
  ACL user), as ``publish()`` sends them.

Every client connects to nginx's address on the project's Docker network (not through Docker's
port publishing, whose userland proxy would add its own CPU), sending the site's public origin
as ``Origin``. Every loop is bounded by a count and a deadline in seconds.
"""
from __future__ import annotations

import asyncio
import json
import math
import resource
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable

import requests

from rtclient.centrifugo import WEBSOCKET_PATH, CentrifugoConnection, Subscriber
from rtclient.channels import ChannelsClient, channels_url

#: Text of the chat messages the Django-latency run posts (the view saves, then publishes).
DJANGO_PREFIX = "bench-django-"


def progress(message: str) -> None:
    """One progress line on stderr (stdout carries the results)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def client_cpu() -> float:
    """CPU seconds (user + system) this load-generating process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ms(seconds: float | None) -> float | None:
    """Seconds as milliseconds rounded to 0.01 (None stays None)."""
    return None if seconds is None else round(seconds * 1000, 2)


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, nearest rank) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(q / 100 * len(ordered))  # nearest-rank method: the smallest value with q% at or below it
    return ordered[max(0, min(len(ordered), rank) - 1)]


@dataclass
class Receipts:
    """Deliveries seen by all clients of one run: latency of each (receipt time minus the
    publisher's ``ts``, seconds) and, per message ``seq``, the count and the last receipt time."""

    latencies: list[float] = field(default_factory=list)
    count_by_seq: dict[int, int] = field(default_factory=dict)
    last_by_seq: dict[int, float] = field(default_factory=dict)
    first_by_seq: dict[int, float] = field(default_factory=dict)
    ts_by_seq: dict[int, float] = field(default_factory=dict)
    first_publish: float | None = None
    last_receipt: float | None = None

    def record(self, data: dict) -> None:
        """Record one delivery: a benchmark payload ``{"seq": int, "ts": float, ...}``, or a chat
        message (``Message.as_dict()``) whose text is ``DJANGO_TEXT.format(seq=...)``, timed from
        its ``created_at`` (saved by the Django view just before it publishes). A chat message's own ``seq``
        (its number in the room) is not the benchmark's: the text's is used."""
        now = time.time()
        seq, ts = data.get("seq"), data.get("ts")
        if str(data.get("text", "")).startswith(DJANGO_PREFIX):
            seq = int(data["text"][len(DJANGO_PREFIX):])
            ts = datetime.fromisoformat(data["created_at"]).timestamp()
        if not isinstance(seq, int) or ts is None:
            return
        self.latencies.append(now - ts)
        self.ts_by_seq.setdefault(seq, ts)
        self.first_by_seq.setdefault(seq, now)
        self.count_by_seq[seq] = self.count_by_seq.get(seq, 0) + 1
        self.last_by_seq[seq] = now
        self.last_receipt = now

    @property
    def delivered(self) -> int:
        return len(self.latencies)

    def first_ts(self, seq: int) -> float:
        """Publish (or save) time of message ``seq``, Unix seconds."""
        return self.ts_by_seq[seq]

    def reset(self) -> None:
        """Forget every delivery (between two runs on the same connections)."""
        self.latencies.clear()
        self.count_by_seq.clear()
        self.last_by_seq.clear()
        self.ts_by_seq.clear()
        self.first_by_seq.clear()
        self.first_publish = self.last_receipt = None


def payload(seq: int, size: int = 100) -> dict:
    """A JSON object of ``size`` bytes once serialised: ``{"seq", "ts", "text"}`` (``ts`` is the
    publish time, Unix seconds, compared with the receipt time on the same machine's clock)."""
    data = {"seq": seq, "ts": time.time(), "text": ""}
    data["text"] = "x" * max(0, size - len(json.dumps(data, separators=(",", ":"))))
    return data


@dataclass
class Target:
    """What the clients connect to.

    Attributes:
        nginx: ``<address>:<port>`` of nginx's TLS listener on the Docker network (the manifest's
            nginx address and https_port).
        origin: the site's public origin, sent as ``Origin`` (e.g. ``https://127.0.0.1:8443``).
        ca_file: the test CA; the certificate names the public host, not nginx's private address,
            so the chain is verified but not the name.
        room: the room (``rooms:<room>`` on Centrifugo, ``/ws/chat/<room>/`` on Channels).
    """

    nginx: str
    origin: str
    ca_file: str
    room: str = "bench"

    @property
    def centrifugo_url(self) -> str:
        return f"wss://{self.nginx}{WEBSOCKET_PATH}"

    def channels_url(self, room: str | None = None, token: str | None = None) -> str:
        return channels_url(f"wss://{self.nginx}", room or self.room, token)


@dataclass
class Handshake:
    """A connection and how to open it: what ``open_many`` opens (``open()``) and ``close_many``
    closes (``close()``)."""

    conn: Any
    opening: Callable[[], Awaitable[Any]]

    async def open(self) -> None:
        await self.opening()

    async def close(self) -> None:
        await self.conn.close()


def centrifugo_client(target: Target, receipts: Receipts, cookie: str | None = None, token: str | None = None,
                      sub_token: str | None = None, room: str | None = None) -> Handshake:
    """One Centrifugo client of ``rooms:<room>`` through nginx whose deliveries go to ``receipts``.
    Opening connects and subscribes (with the subscription JWT if given: Centrifugo then verifies
    it instead of calling the subscribe proxy); it raises on refusal or after 30 s."""
    conn = CentrifugoConnection(target.centrifugo_url, cookie=cookie, origin=target.origin, token=token,
                                ca_file=target.ca_file, check_hostname=False, timeout=30.0, max_reconnect_delay=5.0)
    channel = f"rooms:{room or target.room}"
    subscriber = Subscriber(on_data=receipts.record, keep=False)
    return Handshake(conn, lambda: conn.subscribe(channel, token=sub_token, subscriber=subscriber, timeout=30))


def channels_client(target: Target, receipts: Receipts, cookie: str | None = None, token: str | None = None,
                    room: str | None = None) -> ChannelsClient:
    """One Channels client of ``room`` through nginx (``?token=`` if given) whose chat messages go
    to ``receipts``; ``open()`` returns after its history frame (30 s), raises on refusal."""
    return ChannelsClient(target.channels_url(room, token), cookie=cookie, origin=target.origin,
                          ca_file=target.ca_file, timeout=30.0, check_hostname=False,
                          on_message=receipts.record, keep=False, max_size=None)


@dataclass
class OpenResult:
    """Outcome of opening many connections: the open ones, handshake times (s), errors by kind."""

    conns: list
    handshakes: list[float]
    errors: dict[str, int]
    seconds: float


async def open_many(make: Callable[[int], Any], count: int, concurrency: int = 200,
                    deadline: float = 120.0, label: str = "") -> OpenResult:
    """Open ``count`` connections made by ``make(i)`` (objects with async ``open()``), at most
    ``concurrency`` handshakes in flight, giving up on the rest after ``deadline`` seconds.
    Handshake time = connect + subscribe (Centrifugo) or connect + history frame (Channels)."""
    semaphore = asyncio.Semaphore(concurrency)
    conns, handshakes, errors = [], [], {}
    started = time.monotonic()
    stop_at = started + deadline
    done = 0

    async def one(i: int) -> None:
        nonlocal done
        async with semaphore:
            if time.monotonic() > stop_at:
                errors["deadline"] = errors.get("deadline", 0) + 1
                return
            conn = make(i)
            t0 = time.monotonic()
            try:
                await asyncio.wait_for(conn.open(), max(1.0, stop_at - t0))
            except Exception as exc:  # noqa: BLE001 - counted and reported by kind
                kind = type(exc).__name__
                errors[kind] = errors.get(kind, 0) + 1
                try:
                    await conn.close()
                except Exception:  # noqa: BLE001
                    pass
                return
            handshakes.append(time.monotonic() - t0)
            conns.append(conn)
            done += 1
            if done % 500 == 0:
                progress(f"{label}: {done}/{count} open")

    await asyncio.gather(*(one(i) for i in range(count)))
    return OpenResult(conns, handshakes, errors, time.monotonic() - started)


async def close_many(conns: list, concurrency: int = 500) -> None:
    """Close connections, ``concurrency`` at a time (errors ignored)."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(conn) -> None:
        async with semaphore:
            try:
                await asyncio.wait_for(conn.close(), 10)
            except Exception:  # noqa: BLE001
                pass

    await asyncio.gather(*(one(c) for c in conns))


async def publish_at_rate(send: Callable[[dict], Awaitable[None]], receipts: Receipts, rate: float,
                          count: int, size: int) -> int:
    """Publish ``count`` payloads at ``rate`` per second with ``send``; returns how many failed."""
    failed = 0
    start = time.monotonic()
    receipts.first_publish = time.time()
    for seq in range(count):
        delay = start + seq / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            await send(payload(seq, size))
        except Exception:  # noqa: BLE001 - counted
            failed += 1
    return failed


async def drain(receipts: Receipts, expected: int, timeout: float) -> None:
    """Wait until ``expected`` deliveries were recorded, or ``timeout`` seconds passed."""
    stop_at = time.monotonic() + timeout
    while receipts.delivered < expected and time.monotonic() < stop_at:
        await asyncio.sleep(0.1)


def django_poster(session: requests.Session, origin: str, room: str) -> Callable[[int], Awaitable[float]]:
    """``post(seq)``: the room's message form (POST ``/rooms/<room>/messages/``) through nginx,
    which saves the message and calls ``chat.realtime.publish``; returns the request's seconds.
    Raises RuntimeError unless Django answers with its redirect back to the room."""
    url = f"{origin}/rooms/{room}/messages/"

    def _post(seq: int) -> float:
        t0 = time.monotonic()
        response = session.post(url, data={"text": f"{DJANGO_PREFIX}{seq}",
                                            "csrfmiddlewaretoken": session.cookies["csrftoken"]},
                                headers={"Referer": f"{origin}/rooms/{room}/"}, timeout=10,
                                allow_redirects=False)
        if response.status_code != 302:
            raise RuntimeError(f"message form answered {response.status_code}")
        return time.monotonic() - t0

    async def post(seq: int) -> float:
        return await asyncio.to_thread(_post, seq)

    return post
