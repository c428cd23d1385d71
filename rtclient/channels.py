"""One client of the app's Django Channels consumers (a room's ``/ws/chat/<room>/``, and a user's
notifications at ``/ws/user/``; frames documented in chat.consumers) over ``websockets``: for the verify tests (frames in a queue, ``wait_message``)
and the benchmark (each chat message to a callback, nothing kept)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

import websockets

from .tls import client_ssl_context

#: Path of the app's Channels consumer for a room (chat.routing), format with ``room=``.
CHANNELS_PATH = "/ws/chat/{room}/"
#: Path of the app's notification consumer: the logged-in user's ``user.<id>`` group, no room.
NOTIFICATIONS_PATH = "/ws/user/"


def notifications_url(site_url: str) -> str:
    """The notification consumer's URL behind a site origin (``https`` becomes ``wss``)."""
    return site_url.rstrip("/").replace("http", "ws", 1) + NOTIFICATIONS_PATH


def channels_url(base: str, room: str, token: str | None = None) -> str:
    """The consumer's URL of ``room`` behind ``base``: an origin (``https://h:p`` becomes
    ``wss://h:p``) or a daphne URL (``ws://10.1.2.3:8101``, the manifest's ``url``); ``token``
    (a connection JWT) goes in the query string as ``?token=``."""
    base = base.rstrip("/")
    if base.startswith("http"):
        base = base.replace("http", "ws", 1)
    url = base + CHANNELS_PATH.format(room=room)
    return f"{url}?token={token}" if token else url


class ChannelsClosed(RuntimeError):
    """The consumer closed the socket; ``code`` is the WebSocket close code (RFC 6455 section
    7.4; the app's 4001 unauthenticated, 4003 forbidden room), 0 for an unexpected first frame."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(f"{message} (close code {code})")
        self.code = code


class ChannelsClient:
    """One WebSocket to the consumer; its frames are read in the background.

    Use ``async with ChannelsClient(url, cookie=..., origin=...) as client:`` or ``open()`` /
    ``close()``. Opening waits for the handshake and, on a room's consumer, its first frame
    (``history``), kept as ``client.history``; the notification consumer (``history=False``)
    sends none.

    Args:
        url: e.g. :func:`channels_url` of the site or of one daphne process.
        cookie: ``Cookie`` header (the Django session); origin: ``Origin`` header (checked by the
            consumer's AllowedHostsOriginValidator).
        ca_file: CA bundle of a ``wss://`` URL; check_hostname: False for an address the
            certificate does not name.
        timeout: seconds for the handshake and the first frame.
        on_message: called with each ``message`` frame's message (``Message.as_dict()``).
        keep: whether frames go to the queue (``next``/``wait_for``); False to only count.
        max_size: largest incoming frame, bytes (None: unlimited).
        history: whether the consumer's first frame is a ``history`` frame to wait for.

    Raises (on open):
        ChannelsClosed: the consumer closed the socket first, or sent another first frame.
        websockets.InvalidStatus: the handshake was refused (e.g. 403 for a foreign Origin).
        asyncio.TimeoutError: no first frame within ``timeout`` seconds.
    """

    def __init__(self, url: str, cookie: str | None = None, origin: str | None = None,
                 ca_file: str | None = None, timeout: float = 5.0, *, check_hostname: bool = True,
                 on_message: Callable[[dict], None] | None = None, keep: bool = True,
                 max_size: int | None = 2 ** 20, history: bool = True) -> None:
        headers = {}
        if cookie:
            headers["Cookie"] = cookie
        if origin:
            headers["Origin"] = origin
        self.url, self.headers, self.timeout = url, headers, timeout
        self.ssl = client_ssl_context(url, ca_file, check_hostname)
        self.on_message, self.keep, self.max_size = on_message, keep, max_size
        self.expect_history = history
        self.frames: asyncio.Queue = asyncio.Queue()
        self.history: list[dict] = []
        self.ws: Any = None
        self._reader: asyncio.Task | None = None

    async def open(self) -> "ChannelsClient":
        """Connect and wait for the history frame (raises: see the class)."""
        self.ws = await websockets.connect(self.url, additional_headers=self.headers, ssl=self.ssl, proxy=None,
                                           open_timeout=self.timeout, max_size=self.max_size)
        if not self.expect_history:
            self._reader = asyncio.create_task(self._read())
            return self
        try:
            first = json.loads(await asyncio.wait_for(self.ws.recv(), self.timeout))
        except websockets.ConnectionClosed:
            raise ChannelsClosed(self.ws.close_code, "socket closed before the history frame") from None
        except BaseException:
            await self.ws.close()
            raise
        if first.get("type") != "history":
            await self.ws.close()
            raise ChannelsClosed(0, f"expected a history frame, got {first!r}")
        self.history = first["messages"]
        self._reader = asyncio.create_task(self._read())
        return self

    async def close(self) -> None:
        """Close the socket and stop the reader."""
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()

    async def __aenter__(self) -> "ChannelsClient":
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                if self.on_message is not None and frame.get("type") == "message":
                    self.on_message(frame["message"])
                if self.keep:
                    await self.frames.put(frame)
        except websockets.ConnectionClosed:
            pass
        await self.frames.put({"type": "closed", "code": self.ws.close_code})

    async def next(self, timeout: float = 5.0) -> dict:
        """The next frame. Raises ``ChannelsClosed`` once the socket is closed,
        ``asyncio.TimeoutError`` after ``timeout`` seconds."""
        frame = await asyncio.wait_for(self.frames.get(), timeout)
        if frame.get("type") == "closed":
            await self.frames.put(frame)  # stays closed for later readers
            raise ChannelsClosed(frame["code"], "socket closed")
        return frame

    async def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 5.0) -> dict:
        """The first frame satisfying ``predicate``, within ``timeout`` seconds (raises as
        :meth:`next`)."""
        async def _scan() -> dict:
            while True:
                frame = await self.next(timeout)
                if predicate(frame):
                    return frame

        return await asyncio.wait_for(_scan(), timeout)

    async def wait_message(self, text: str, timeout: float = 5.0) -> dict:
        """The message dict (``Message.as_dict()``) of the first ``message`` frame with ``text``."""
        frame = await self.wait_for(
            lambda f: f.get("type") == "message" and f["message"].get("text") == text, timeout)
        return frame["message"]

    async def send(self, frame: dict) -> None:
        """Send one JSON frame: ``{"text": ...}`` or ``{"type": "heartbeat"}``."""
        await self.ws.send(json.dumps(frame))
