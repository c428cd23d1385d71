"""Real clients of the deployed stack, shared by the molecule verify tests, the browser test and
the load tools: a Django login over HTTP, Centrifugo clients over WebSocket (centrifuge-python)
and Django Channels clients over WebSocket (websockets).

Nothing here is a stand-in: the session cookie comes from Django's real login form, and the
WebSocket goes to a real Centrifugo node (straight to its client port, or through nginx), whose
connect proxy asks Django who the cookie belongs to, or to a real daphne process.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import websockets
from centrifuge import (
    Client,
    ClientEventHandler,
    DisconnectedContext,
    PublicationContext,
    Subscription,
    SubscriptionEventHandler,
)

#: Path of Centrifugo's bidirectional WebSocket endpoint (websocket.handler_prefix).
WEBSOCKET_PATH = "/connection/websocket"
#: Path of the app's Channels consumer for a room (chat.routing), format with ``room=``.
CHANNELS_PATH = "/ws/chat/{room}/"


class LoginError(RuntimeError):
    """Django's login form did not accept the credentials."""


def django_login(site_url: str, username: str, password: str, timeout: float = 10.0,
                 verify: str | bool = True) -> requests.Session:
    """Log in through Django's login form, the way a browser does.

    Args:
        site_url: the site's origin, e.g. ``"https://127.0.0.1:8443"`` (no trailing slash).
        username, password: a Django user's credentials.
        timeout: per-request timeout in seconds.
        verify: CA bundle path that signs the site's certificate (the self-signed certificate of
            the test hosts), or True for the system's CAs.

    Returns:
        A ``requests.Session`` holding the ``sessionid`` and ``csrftoken`` cookies.

    Raises:
        LoginError: the form did not redirect (wrong credentials) or set no session cookie.
        requests.RequestException: the site did not answer.
    """
    session = requests.Session()
    # REQUESTS_CA_BUNDLE and friends would override session.verify: trust only what is given.
    session.trust_env = False
    session.verify = verify
    login_url = f"{site_url}/accounts/login/"
    session.get(login_url, timeout=timeout).raise_for_status()
    response = session.post(
        login_url,
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies.get("csrftoken", ""),
        },
        headers={"Referer": login_url, "Origin": site_url},
        allow_redirects=False,
        timeout=timeout,
    )
    if response.status_code != 302 or "sessionid" not in session.cookies:
        raise LoginError(f"login of {username!r} at {login_url} failed: HTTP {response.status_code}")
    return session


def cookie_header(session: requests.Session) -> str:
    """The session's cookies as one ``Cookie`` request header value (RFC 6265 section 5.4)."""
    return "; ".join(f"{name}={value}" for name, value in session.cookies.items())


@dataclass
class Inbox(SubscriptionEventHandler):
    """Collects the publications of one subscription in arrival order (``data`` of each)."""

    queue: asyncio.Queue = field(default_factory=asyncio.Queue)

    async def on_publication(self, ctx: PublicationContext) -> None:  # noqa: D102
        await self.queue.put(ctx.pub.data)

    async def next(self, timeout: float = 5.0) -> Any:
        """The next publication's data; raises ``asyncio.TimeoutError`` after ``timeout`` seconds."""
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def wait_for(self, predicate, timeout: float = 5.0) -> Any:
        """The first publication whose data satisfies ``predicate``, within ``timeout`` seconds."""
        async def _scan() -> Any:
            while True:
                data = await self.queue.get()
                if predicate(data):
                    return data

        return await asyncio.wait_for(_scan(), timeout)


@dataclass
class Events(ClientEventHandler):
    """Records the client's disconnects (code and reason, Centrifugo's disconnect codes)."""

    disconnects: list[DisconnectedContext] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:  # noqa: D102
        self.disconnects.append(ctx)
        self.disconnected.set()


def make_client(ws_url: str, cookie: str | None = None, origin: str | None = None,
                timeout: float = 5.0, ca_file: str | None = None,
                token: str | None = None) -> tuple[Client, Events]:
    """A centrifuge-python client for ``ws_url`` that sends the given ``Cookie`` and ``Origin``.

    Args:
        ws_url: e.g. ``"ws://127.0.0.1:8080/connection/websocket"`` (through nginx) or a node's own
            ``"ws://10.1.2.3:8000/connection/websocket"``.
        cookie: ``Cookie`` header for Centrifugo's connect proxy (see :func:`cookie_header`).
        origin: ``Origin`` header, checked against Centrifugo's ``client.allowed_origins``.
        timeout: operation timeout in seconds.
        ca_file: CA bundle for a ``wss://`` URL whose certificate is self-signed.
        token: a connection JWT (Django's ``/chat/token/``); Centrifugo verifies it before, and
            instead of, the connect proxy (https://centrifugal.dev/docs/server/authentication).
    """
    headers = {}
    if cookie:
        headers["Cookie"] = cookie
    if origin:
        headers["Origin"] = origin
    events = Events()
    ssl_context = ssl.create_default_context(cafile=ca_file) if ws_url.startswith("wss://") else None
    client = Client(ws_url, events=events, headers=headers, timeout=timeout,
                    max_reconnect_delay=2.0, ssl_context=ssl_context, token=token or "")
    return client, events


async def subscribe(client: Client, channel: str, timeout: float = 5.0) -> tuple[Subscription, Inbox]:
    """Connect ``client`` if needed, subscribe it to ``channel`` and wait until subscribed.

    Raises:
        centrifuge.CentrifugeError (or a subclass): the connect or subscribe was refused.
        asyncio.TimeoutError: not subscribed within ``timeout`` seconds.
    """
    await client.connect()
    await client.ready(timeout)
    inbox = Inbox()
    sub = client.new_subscription(channel, events=inbox)
    await sub.subscribe()
    await sub.ready(timeout)
    return sub, inbox


class ChannelsClient:
    """A client of the app's Channels consumer (``/ws/chat/<room>/``, frames documented in
    chat.consumers): one WebSocket, its frames read in the background into a queue.

    Use as ``async with ChannelsClient(url, cookie=..., origin=...) as client:``. Entering waits
    for the handshake and the consumer's first frame (``history``), kept as ``client.history``.

    Raises (on enter):
        ChannelsClosed: the consumer closed the socket (``code``: 4001 unauthenticated,
            4003 forbidden room).
        websockets.InvalidStatus: the handshake was refused (e.g. 403 for a foreign Origin).
        asyncio.TimeoutError: no first frame within ``timeout`` seconds.
    """

    def __init__(self, url: str, cookie: str | None = None, origin: str | None = None,
                 ca_file: str | None = None, timeout: float = 5.0) -> None:
        headers = {}
        if cookie:
            headers["Cookie"] = cookie
        if origin:
            headers["Origin"] = origin
        self.url, self.headers, self.timeout = url, headers, timeout
        self.ssl = ssl.create_default_context(cafile=ca_file) if url.startswith("wss://") else None
        self.frames: asyncio.Queue = asyncio.Queue()
        self.history: list[dict] = []
        self.ws = None
        self._reader: asyncio.Task | None = None

    async def __aenter__(self) -> "ChannelsClient":
        self.ws = await websockets.connect(self.url, additional_headers=self.headers, ssl=self.ssl,
                                           open_timeout=self.timeout)
        self._reader = asyncio.create_task(self._read())
        first = await self.next(self.timeout)
        if first.get("type") != "history":
            raise ChannelsClosed(0, f"expected a history frame, got {first!r}")
        self.history = first["messages"]
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                await self.frames.put(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        await self.frames.put({"type": "closed", "code": self.ws.close_code})

    async def next(self, timeout: float = 5.0) -> dict:
        """The next frame; ``ChannelsClosed`` once the socket is closed."""
        frame = await asyncio.wait_for(self.frames.get(), timeout)
        if frame.get("type") == "closed":
            await self.frames.put(frame)  # stays closed for later readers
            raise ChannelsClosed(frame["code"], "socket closed")
        return frame

    async def wait_for(self, predicate, timeout: float = 5.0) -> dict:
        """The first frame satisfying ``predicate``, within ``timeout`` seconds."""
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


class ChannelsClosed(RuntimeError):
    """The consumer closed the socket; ``code`` is the WebSocket close code."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(f"{message} (close code {code})")
        self.code = code


def ansible_groups(inventory: str) -> dict[str, list[str]]:
    """Group name -> host names of an Ansible inventory, as ``ansible-inventory --list`` sees it."""
    out = subprocess.run(["ansible-inventory", "-i", inventory, "--list"], check=True,
                         capture_output=True, text=True).stdout
    data = json.loads(out)
    return {name: value.get("hosts", []) for name, value in data.items()
            if isinstance(value, dict) and name != "_meta"}


def container_address(name: str) -> str:
    """The IP address of a test-host container on its (first) Docker network."""
    import docker  # the Docker SDK, as molecule's docker driver uses it

    networks = docker.from_env().containers.get(name).attrs["NetworkSettings"]["Networks"]
    return next(iter(networks.values()))["IPAddress"]


def centrifugo_instances(name: str) -> list[dict[str, str]]:
    """The Centrifugo instances a test host runs, as the centrifugo role deployed them: one mapping
    per ``/etc/centrifugo/instances/<port>.env`` (``CENTRIFUGO_NODE_NAME``,
    ``CENTRIFUGO_HTTP_SERVER_PORT``, ``CENTRIFUGO_HTTP_SERVER_INTERNAL_PORT``, ...), by port.

    Raises:
        RuntimeError: the host has no instance environment file.
    """
    import docker

    code, out = docker.from_env().containers.get(name).exec_run(
        ["grep", "-r", "^CENTRIFUGO_", "/etc/centrifugo/instances"])
    if code != 0:
        raise RuntimeError(f"{name}: no Centrifugo instance environment file: {out.decode(errors='replace')}")
    by_file: dict[str, dict[str, str]] = {}
    for line in out.decode().splitlines():
        path, _, setting = line.partition(":")
        key, _, value = setting.partition("=")
        by_file.setdefault(path, {})[key] = value
    return sorted(by_file.values(), key=lambda env: int(env["CENTRIFUGO_HTTP_SERVER_PORT"]))


def read_credential(name: str, credentials_dir: str | None = None) -> str:
    """A secret the inventory generated (ansible.builtin.password lookup file), without its salt."""
    base = Path(credentials_dir or os.environ["RTSTACK_CREDENTIALS_DIR"])
    return (base / name).read_text().split(" salt=")[0].strip()
