"""The benchmark's load machinery besides the load generator (bench.loadgen): the delivery tally it
reports, payloads, percentiles, where clients connect, publishing at a rate, posting through Django.

Publications go in as Django's ``publish()`` sends them: Centrifugo's server HTTP API
(rtclient.publish.CentrifugoPublisher), or the channel layer's ``group_send``
(rtclient.publish.ChannelsPublisher, the app's Redis ACL user). Every client connects to nginx's
address on the project's Docker network (not through Docker's port publishing, whose userland
proxy would add its own CPU), sending the site's public origin as ``Origin``. Every loop is
bounded by a count and a deadline in seconds.
"""
from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import requests

from rtclient.centrifugo import WEBSOCKET_PATH
from rtclient.channels import CHANNELS_PATH

#: Text of the chat messages the Django-latency run posts (the view saves, then publishes).
DJANGO_PREFIX = "bench-django-"


def progress(message: str) -> None:
    """One progress line on stderr (stdout carries the results)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


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
    """Deliveries seen by all clients of one run, as the load generator tallied them: latency of each
    (receipt time minus the publisher's ``ts``, or a chat message's ``created_at``, seconds) and, per
    message number, the count, the first and last receipt times and the publish time (Unix seconds)."""

    latencies: list[float] = field(default_factory=list)
    count_by_seq: dict[int, int] = field(default_factory=dict)
    last_by_seq: dict[int, float] = field(default_factory=dict)
    first_by_seq: dict[int, float] = field(default_factory=dict)
    ts_by_seq: dict[int, float] = field(default_factory=dict)
    last_receipt: float | None = None

    @classmethod
    def from_report(cls, report: dict) -> "Receipts":
        """The tally as the load generator reports it (bench/loadgen/receipts.go: JSON object keys
        are strings; message numbers become ints again)."""
        def numbered(values: dict) -> dict:
            return {int(seq): value for seq, value in (values or {}).items()}

        return cls(latencies=list(report.get("latencies") or []), count_by_seq=numbered(report.get("count_by_seq")),
                   last_by_seq=numbered(report.get("last_by_seq")), first_by_seq=numbered(report.get("first_by_seq")),
                   ts_by_seq=numbered(report.get("ts_by_seq")), last_receipt=report.get("last_receipt") or None)

    @property
    def delivered(self) -> int:
        return len(self.latencies)

    def first_ts(self, seq: int) -> float:
        """Publish (or save) time of message ``seq``, Unix seconds."""
        return self.ts_by_seq[seq]


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
        centrifugo: ``<address>:<port>`` of nginx's l4 listener (the manifest's ``l4_port``) in the stack's l4
            mode, where Centrifugo's clients connect; empty in l7 (they use ``nginx``).
    """

    nginx: str
    origin: str
    ca_file: str
    room: str = "bench"
    centrifugo: str = ""

    @property
    def centrifugo_url(self) -> str:
        return f"wss://{self.centrifugo or self.nginx}{WEBSOCKET_PATH}"

    @property
    def channels_url(self) -> str:
        """The consumer's URL with ``%s`` for the room (the load generator fills it in)."""
        return f"wss://{self.nginx}{CHANNELS_PATH.format(room='%s')}"


async def publish_at_rate(send: Callable[[dict], Awaitable[None]], rate: float, count: int,
                          size: int) -> tuple[int, float]:
    """Publish ``count`` payloads at ``rate`` per second with ``send``; returns how many failed and
    when the first was sent (Unix seconds)."""
    failed = 0
    start = time.monotonic()
    first_publish = time.time()
    for seq in range(count):
        delay = start + seq / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            await send(payload(seq, size))
        except Exception:  # noqa: BLE001 - counted
            failed += 1
    return failed, first_publish


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
