"""One Centrifugo client for tests, drills and the benchmark: a centrifuge-python ``Client``
(bidirectional WebSocket, https://centrifugal.dev/docs/transports/client_protocol) with its
subscriptions, recording what happens to them.

- :class:`Subscriber` (one subscription): publications in an inbox queue (``next``,
  ``wait_for``) and/or to a callback, the receipt time of every numbered publication
  (``data["seq"]``), and the subscription's state changes: ``subscribing`` times and
  ``subscribed`` records with ``was_recovering``/``recovered``
  (https://centrifugal.dev/docs/getting-started/recovery);
- :class:`ConnectionEvents` (one client): disconnect records (time, code, reason; codes in
  https://centrifugal.dev/docs/server/codes);
- :class:`CentrifugoConnection`: the client with its headers (``Cookie`` for the connect proxy,
  ``Origin`` for ``client.allowed_origins``), token, TLS, and ``connect``/``subscribe``/``close``.

Times are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from centrifuge import (
    Client,
    ClientEventHandler,
    DisconnectedContext,
    PublicationContext,
    ConnectingContext,
    ErrorContext,
    SubscribedContext,
    Subscription,
    SubscribingContext,
    SubscriptionErrorContext,
    SubscriptionEventHandler,
    UnsubscribedContext,
)

from .auth import SessionCookies
from .tls import client_ssl_context

#: How many state transitions a subscriber or connection keeps for diagnostics.
TRANSITIONS_KEPT = 6

#: Path of Centrifugo's bidirectional WebSocket endpoint (``websocket.handler_prefix``).
WEBSOCKET_PATH = "/connection/websocket"


def websocket_url(site_url: str) -> str:
    """Centrifugo's WebSocket URL behind a site origin: ``https://h:p`` -> ``wss://h:p`` +
    :data:`WEBSOCKET_PATH` (``http`` -> ``ws``)."""
    return site_url.rstrip("/").replace("http", "ws", 1) + WEBSOCKET_PATH


@dataclass(frozen=True)
class Subscribed:
    """One ``subscribed`` event: when, and whether it followed a recovery attempt and recovered
    every missed publication."""

    at: float
    was_recovering: bool
    recovered: bool


@dataclass(frozen=True)
class Disconnect:
    """One disconnect of a client: when, Centrifugo's disconnect code and reason."""

    at: float
    code: int
    reason: str


class Subscriber(SubscriptionEventHandler):
    """Records one subscription.

    Args:
        on_data: called with each publication's ``data`` (e.g. a benchmark tally); runs in the
            client's event loop, must not block.
        keep: whether publications also go to the inbox queue (``next``/``wait_for``); False for
            thousands of benchmark clients that only count.
        on_subscribed: called with each :class:`Subscribed` record (e.g. to fill gaps from the
            database after a resubscribe); runs in the client's event loop, must not block.

    Attributes:
        queue: publications' ``data`` in arrival order (when ``keep``).
        received: ``seq`` -> first receipt time, for publications whose data has an int ``seq``
            (a chat message's room number, or a benchmark's counter).
        arrivals: those ``seq`` in arrival order (repeats included); duplicates: how many repeats.
        subscribing: times the subscription went (back) to ``subscribing``.
        subscribed: :class:`Subscribed` records.
        transitions: the last :data:`TRANSITIONS_KEPT` ``(time, event, code, reason)`` of the
            subscription (``subscribing``, ``subscribed``, ``unsubscribed``, ``error``), to say why one
            is not subscribed.
        ready: set while subscribed.
        subscription: the centrifuge ``Subscription`` (set by :meth:`CentrifugoConnection.subscribe`).
    """

    def __init__(self, on_data: Callable[[Any], None] | None = None, keep: bool = True,
                 on_subscribed: Callable[["Subscribed"], None] | None = None) -> None:
        # Not self.on_subscribed: that is the event handler's own method.
        self.on_data, self.keep, self.subscribed_callback = on_data, keep, on_subscribed
        self.queue: asyncio.Queue = asyncio.Queue()
        self.received: dict[int, float] = {}
        self.arrivals: list[int] = []
        self.duplicates = 0
        self.subscribing: list[float] = []
        self.subscribed: list[Subscribed] = []
        self.ready = asyncio.Event()
        self.subscription: Subscription | None = None
        self.transitions: deque[tuple[float, str, int, str]] = deque(maxlen=TRANSITIONS_KEPT)

    async def on_publication(self, ctx: PublicationContext) -> None:  # noqa: D102
        data = ctx.pub.data
        seq = data.get("seq") if isinstance(data, dict) else None
        if isinstance(seq, int):
            if seq in self.received:
                self.duplicates += 1
            self.received.setdefault(seq, time.monotonic())
            self.arrivals.append(seq)
        if self.on_data is not None:
            self.on_data(data)
        if self.keep:
            await self.queue.put(data)

    async def on_subscribing(self, ctx: SubscribingContext) -> None:  # noqa: D102
        self.subscribing.append(time.monotonic())
        self.transitions.append((time.monotonic(), "subscribing", ctx.code, ctx.reason))
        self.ready.clear()

    async def on_unsubscribed(self, ctx: UnsubscribedContext) -> None:  # noqa: D102
        self.transitions.append((time.monotonic(), "unsubscribed", ctx.code, ctx.reason))
        self.ready.clear()

    async def on_error(self, ctx: SubscriptionErrorContext) -> None:  # noqa: D102
        self.transitions.append((time.monotonic(), "error", ctx.code, repr(ctx.error)))

    async def on_subscribed(self, ctx: SubscribedContext) -> None:  # noqa: D102
        self.transitions.append((time.monotonic(), "subscribed", 0, ""))
        record = Subscribed(time.monotonic(), ctx.was_recovering, ctx.recovered)
        self.subscribed.append(record)
        self.ready.set()
        if self.subscribed_callback is not None:
            self.subscribed_callback(record)

    async def next(self, timeout: float = 5.0) -> Any:
        """The next publication's data. Raises ``asyncio.TimeoutError`` after ``timeout`` s."""
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        """The first publication whose data satisfies ``predicate``, within ``timeout`` seconds
        (earlier ones are consumed). Raises ``asyncio.TimeoutError``."""
        async def _scan() -> Any:
            while True:
                data = await self.queue.get()
                if predicate(data):
                    return data

        return await asyncio.wait_for(_scan(), timeout)

    async def publish(self, data: Any) -> None:
        """Publish ``data`` from the client into the channel (through Centrifugo's publish proxy
        when the namespace has one). Raises ``centrifuge.CentrifugeError`` when refused."""
        if self.subscription is None:
            raise RuntimeError("not subscribed through CentrifugoConnection.subscribe")
        await self.subscription.publish(data)


class ConnectionEvents(ClientEventHandler):
    """Records one client's disconnects: ``disconnects`` (:class:`Disconnect` records) and
    ``disconnected``, set at the first; ``transitions``, the last :data:`TRANSITIONS_KEPT`
    ``(time, event, code, reason)`` (``connecting``, ``disconnected``, ``error``)."""

    def __init__(self) -> None:
        self.disconnects: list[Disconnect] = []
        self.disconnected = asyncio.Event()
        self.transitions: deque[tuple[float, str, int, str]] = deque(maxlen=TRANSITIONS_KEPT)

    async def on_connecting(self, ctx: ConnectingContext) -> None:  # noqa: D102
        self.transitions.append((time.monotonic(), "connecting", ctx.code, ctx.reason))

    async def on_error(self, ctx: ErrorContext) -> None:  # noqa: D102
        self.transitions.append((time.monotonic(), "error", ctx.code, repr(ctx.error)))

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:  # noqa: D102
        self.disconnects.append(Disconnect(time.monotonic(), ctx.code, ctx.reason))
        self.transitions.append((time.monotonic(), "disconnected", ctx.code, ctx.reason))
        self.disconnected.set()


def describe_transitions(transitions: "deque[tuple[float, str, int, str]]", now: float) -> str:
    """``transitions`` (a :class:`Subscriber`'s or :class:`ConnectionEvents`') as one line, newest last:
    ``-3.2s subscribing 100 'internal server error'; ...`` (seconds before ``now``, a ``time.monotonic()``)."""
    return "; ".join(f"-{now - at:.1f}s {event} {code} {reason!r}" for at, event, code, reason in transitions)


class CentrifugoConnection:
    """A centrifuge-python client of one Centrifugo URL (a node's own client port or nginx).

    Args:
        url: e.g. ``"wss://127.0.0.1:8443/connection/websocket"`` (through nginx) or a node's
            ``"ws://10.1.2.3:8000/connection/websocket"`` (the manifest's ``client_url``).
        cookie: ``Cookie`` header for Centrifugo's connect proxy (``auth.cookie_header``), or an
            ``auth.SessionCookies`` whose updates later reconnects send.
        origin: ``Origin`` header, checked against Centrifugo's ``client.allowed_origins``.
        token: a connection JWT (``auth.connection_token``); Centrifugo verifies it before, and
            instead of, the connect proxy (https://centrifugal.dev/docs/server/authentication).
        ca_file: CA bundle of a ``wss://`` URL whose certificate is self-signed.
        check_hostname: False to connect to an address the certificate does not name.
        timeout: operation timeout of the client, seconds (also the default wait of
            ``connect``/``subscribe``).
        max_reconnect_delay: the client's reconnect backoff cap, seconds.

    ``client`` is the centrifuge ``Client``; ``events`` its :class:`ConnectionEvents`;
    ``subscribers`` channel -> :class:`Subscriber`. Use ``async with`` or :meth:`close`.
    """

    def __init__(self, url: str, *, cookie: "str | SessionCookies | None" = None, origin: str | None = None,
                 token: str | None = None, ca_file: str | None = None, check_hostname: bool = True,
                 timeout: float = 5.0, max_reconnect_delay: float = 2.0) -> None:
        headers: dict[str, str] = {}
        if isinstance(cookie, SessionCookies):
            # centrifuge-python keeps this mapping and sends it on every (re)connect: a reconnect after the
            # session's key cycled sends the new one, as a browser's WebSocket does.
            cookie.bind(headers)
        elif cookie:
            headers["Cookie"] = cookie
        if origin:
            headers["Origin"] = origin
        self.url, self.timeout = url, timeout
        self.events = ConnectionEvents()
        self.client = Client(url, events=self.events, headers=headers, token=token or "", timeout=timeout,
                             max_reconnect_delay=max_reconnect_delay, proxy=None,
                             ssl_context=client_ssl_context(url, ca_file, check_hostname))
        self.subscribers: dict[str, Subscriber] = {}
        self._connecting = False

    async def connect(self, wait: bool = True, timeout: float | None = None) -> None:
        """Start connecting; with ``wait``, until connected.

        Raises:
            centrifuge.CentrifugeError: the server refused the connection (e.g. the connect proxy
                said unauthorized: disconnect code 4501).
            asyncio.TimeoutError / centrifuge.CentrifugeError: not connected within ``timeout``
                seconds (default: the client's timeout).
        """
        self._connecting = True
        await self.client.connect()
        if wait:
            await self.ready(timeout)

    async def ready(self, timeout: float | None = None) -> None:
        """Wait until connected (``timeout`` seconds, default the client's); raises as
        :meth:`connect`."""
        await self.client.ready(timeout or self.timeout)

    async def subscribe(self, channel: str, *, token: str | None = None, subscriber: Subscriber | None = None,
                        wait: bool = True, timeout: float | None = None) -> Subscriber:
        """Connect if not yet started, subscribe to ``channel`` and (with ``wait``) wait until
        subscribed.

        Args:
            channel: e.g. ``"rooms:lobby"``.
            token: a subscription JWT (``auth.subscription_token``): Centrifugo verifies it instead
                of calling the subscribe proxy.
            subscriber: the recorder to use (default: a new :class:`Subscriber`).
            timeout: seconds for each wait (default: the client's timeout).

        Returns:
            The :class:`Subscriber`, its ``subscription`` set.

        Raises:
            centrifuge.CentrifugeError (or a subclass): the connect or subscribe was refused.
            asyncio.TimeoutError: not subscribed within ``timeout`` seconds.
        """
        if not self._connecting:
            await self.connect(wait=wait, timeout=timeout)
        subscriber = subscriber or Subscriber()
        subscription = self.client.new_subscription(channel, events=subscriber, token=token or "")
        subscriber.subscription = subscription
        self.subscribers[channel] = subscriber
        await subscription.subscribe()
        if wait:
            await subscription.ready(timeout or self.timeout)
        return subscriber

    async def open(self, channel: str, token: str | None = None, timeout: float | None = None) -> Subscriber:
        """Connect and subscribe to ``channel``, waiting for both (the benchmark's handshake);
        raises as :meth:`subscribe`."""
        await self.connect(timeout=timeout)
        return await self.subscribe(channel, token=token, timeout=timeout)

    async def close(self) -> None:
        """Disconnect (no reconnect)."""
        await self.client.disconnect()

    async def __aenter__(self) -> "CentrifugoConnection":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
