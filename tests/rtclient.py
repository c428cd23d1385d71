"""Real clients of the deployed stack, shared by the molecule verify tests, the browser test and
the load tools: a Django login over HTTP and Centrifugo clients over WebSocket (centrifuge-python).

Nothing here is a stand-in: the session cookie comes from Django's real login form, and the
WebSocket goes to a real Centrifugo node (straight to its client port, or through nginx), whose
connect proxy asks Django who the cookie belongs to.
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
                timeout: float = 5.0, ca_file: str | None = None) -> tuple[Client, Events]:
    """A centrifuge-python client for ``ws_url`` that sends the given ``Cookie`` and ``Origin``.

    Args:
        ws_url: e.g. ``"ws://127.0.0.1:8080/connection/websocket"`` (through nginx) or a node's own
            ``"ws://10.1.2.3:8000/connection/websocket"``.
        cookie: ``Cookie`` header for Centrifugo's connect proxy (see :func:`cookie_header`).
        origin: ``Origin`` header, checked against Centrifugo's ``client.allowed_origins``.
        timeout: operation timeout in seconds.
        ca_file: CA bundle for a ``wss://`` URL whose certificate is self-signed.
    """
    headers = {}
    if cookie:
        headers["Cookie"] = cookie
    if origin:
        headers["Origin"] = origin
    events = Events()
    ssl_context = ssl.create_default_context(cafile=ca_file) if ws_url.startswith("wss://") else None
    client = Client(ws_url, events=events, headers=headers, timeout=timeout,
                    max_reconnect_delay=2.0, ssl_context=ssl_context)
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


def read_credential(name: str, credentials_dir: str | None = None) -> str:
    """A secret the inventory generated (ansible.builtin.password lookup file), without its salt."""
    base = Path(credentials_dir or os.environ["RTSTACK_CREDENTIALS_DIR"])
    return (base / name).read_text().split(" salt=")[0].strip()
