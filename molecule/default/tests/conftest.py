"""Fixtures for verifying a deployed stack: its manifest (build/<stack>/stack.json, rendered by
site.yml), its hosts by inventory group and their addresses (from the manifest), the site URL and
the users' credentials.

Runs under molecule's testinfra verifier (RTSTACK_STACK_NAME=molecule-default or molecule-ha picks
the manifest), and against `make up` as well (RTSTACK_STACK_NAME=local, the default, and
RTSTACK_CREDENTIALS_DIR=inventories/local/credentials). RTSTACK_MANIFEST points at a manifest file
directly. Every address and port comes from the manifest.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import pytest
import testinfra

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from rtclient import auth, node  # noqa: E402
from rtclient.centrifugo import CentrifugoConnection, websocket_url  # noqa: E402
from rtclient.manifest import Manifest, load_manifest  # noqa: E402
from rtclient import publish  # noqa: E402
from rtclient.publish import post_headers  # noqa: E402


@pytest.fixture(scope="session")
def manifest() -> Manifest:
    """The deployed stack's manifest (rtclient.manifest.load_manifest)."""
    return load_manifest()


@pytest.fixture(scope="session")
def groups(manifest) -> dict[str, list[str]]:
    """Inventory group -> host names, from the manifest."""
    return manifest.groups()


@pytest.fixture(scope="session")
def host_by_name(manifest):
    """Host name -> testinfra host (docker backend: the test hosts are containers)."""
    return {name: testinfra.get_host(f"docker://{name}") for name in manifest.hosts}


@pytest.fixture(scope="session")
def hosts(groups, host_by_name):
    """Inventory group -> testinfra hosts, in the order of ``groups[group]``."""
    return {group: [host_by_name[name] for name in names] for group, names in groups.items()}


@pytest.fixture(scope="session")
def address(manifest):
    """Host name -> its private address, from the manifest."""
    return {name: host.address for name, host in manifest.hosts.items()}


@pytest.fixture(scope="session")
def tier_units(manifest):
    """``tier_units(tier)``: (host name, systemd unit) of every process of ``tier`` the manifest
    lists: ``redis`` (redis-server), ``centrifugo`` (centrifugo@<port>.service), ``gunicorn``
    (chat-gunicorn), ``daphne`` (chat-daphne@<port>), ``nginx``."""
    def _units(tier: str) -> list[tuple[str, str]]:
        if tier == "centrifugo":
            return [(node.host, node.unit) for node in manifest.centrifugo]
        if tier == "gunicorn":
            return [(item.host, "chat-gunicorn") for item in manifest.gunicorn]
        if tier == "daphne":
            return [(item.host, f"chat-daphne@{item.port}") for item in manifest.daphne]
        if tier == "redis":
            return [(server.host, manifest.redis.files["server_unit"]) for server in manifest.redis.servers]
        if tier == "nginx":
            return [(item.host, "nginx") for item in manifest.nginx]
        raise ValueError(f"unknown tier {tier!r}")
    return _units


@pytest.fixture(scope="session")
def site_url(manifest) -> str:
    """The site's origin as a browser sees it (nginx), without a trailing slash: the manifest's
    site_url, else env RTSTACK_SITE_URL."""
    url = manifest.site_url or os.environ.get("RTSTACK_SITE_URL", "")
    assert url, f"no site_url in {manifest.path} and RTSTACK_SITE_URL is not set"
    return url.rstrip("/")


@pytest.fixture(scope="session")
def site_http_url(manifest) -> str:
    """The site's plain-HTTP origin, which only redirects to HTTPS: the manifest's site_http_url
    if non-empty, else env RTSTACK_SITE_HTTP_URL."""
    url = manifest["site_http_url"] or os.environ.get("RTSTACK_SITE_HTTP_URL", "")
    assert url, f"no site_http_url in {manifest.path} and RTSTACK_SITE_HTTP_URL is not set"
    return url.rstrip("/")


@pytest.fixture(scope="session")
def ca_file() -> str:
    """The test CA that signs the test hosts' certificate (made by the nginx role)."""
    return auth.ca_file()


@pytest.fixture(scope="session")
def ws_url(manifest, site_url) -> str:
    """Centrifugo's WebSocket endpoint through nginx, as the stack's clients open it: the site's
    /connection/websocket (nginx_centrifugo_mode l7) or the l4 listener's port on the site's host name (l4)."""
    return manifest.centrifugo_websocket_url or websocket_url(site_url)


@pytest.fixture(scope="session")
def credentials():
    """Reads a generated secret by name (e.g. "user_alice")."""
    return auth.read_credential


@pytest.fixture(scope="session")
def login(site_url, credentials, ca_file):
    """Logs a demo user in through Django's login form; returns the requests session."""
    def _login(username: str):
        return auth.django_login(site_url, username, credentials(f"user_{username}"), verify=ca_file)
    return _login


@pytest.fixture(scope="session")
def client_factory(site_url, ca_file):
    """A Centrifugo client with the site's origin and CA:
    ``client_factory(ws_url, cookie, origin=site_url, token=None)`` -> CentrifugoConnection."""
    def _make(ws_url: str, cookie: str | None, origin: str | None = site_url,
              token: str | None = None) -> CentrifugoConnection:
        return CentrifugoConnection(ws_url, cookie=cookie, origin=origin, token=token, ca_file=ca_file)
    return _make


def _join_room(session, site_url: str, room: str) -> None:
    """Make ``session``'s user a member of ``room`` through the index page's join box (a POST, which
    creates an unknown room at access level ``users``)."""
    response = session.post(f"{site_url}/rooms/join/", data={"name": room}, timeout=10, allow_redirects=False,
                            headers=post_headers(site_url, session.cookies.get("csrftoken", "")))
    assert response.status_code == 302 and response.headers["Location"].rstrip("/").endswith(f"/rooms/{room}"), \
        f"join {room}: HTTP {response.status_code} {response.headers.get('Location')}"


@pytest.fixture(scope="session")
def post_message(site_url):
    """``post_message(session, room, text)`` -> the saved message dict (rtclient.publish.post_message);
    fails the test on any answer but 201."""
    def _post(session, room: str, text: str) -> dict:
        try:
            return publish.post_message(session, site_url, room, text)
        except publish.PostError as exc:
            pytest.fail(f"post to {room}: {exc}")
    return _post


@pytest.fixture(scope="session")
def join_room(site_url):
    """``join_room(session, room)``: the user joins (or creates) the room (see _join_room)."""
    return lambda session, room: _join_room(session, site_url, room)


def _node_clients(started: list, site_url: str, ca_file: str, session, names=node.TRANSPORTS, base: str | None = None,
                  emulation_base: str | None = None, channels=(), count: int = 1, quiet: bool = False,
                  token: str | None = None) -> node.NodeClients:
    base = base or site_url
    clients = node.NodeClients(node.transports(base, names), node.emulation_url(emulation_base or base),
                               cookie=None if token else auth.cookie_header(session), token=token, origin=site_url,
                               channels=channels, count=count, quiet=quiet, ca_file=ca_file)
    started.append(clients)
    return clients


@pytest.fixture
def node_clients(site_url, ca_file):
    """Starts centrifuge-js clients under Node (rtclient.node.NodeClients), all closed when the test
    ends: ``node_clients(session, names=("websocket", "http_stream", "sse"), base=site_url,
    emulation_base=base, channels=(), count=1, quiet=False, token=None)``; ``base``/``emulation_base``
    is the site or one node's ``base_url`` (its own client port); with ``token`` (a connection JWT)
    the clients send it instead of ``session``'s cookie."""
    started: list[node.NodeClients] = []
    yield lambda session, **options: _node_clients(started, site_url, ca_file, session, **options)
    for clients in started:
        clients.close()


#: The idle hold: seconds without application data that every transport must survive. Centrifugo's
#: pings (every 25 s) are all that crosses nginx meanwhile: the hold catches a proxy that buffers them
#: or cuts a connection that carries nothing else for a minute.
IDLE_HOLD_SECONDS = 65


@pytest.fixture(scope="session", autouse=True)
def idle_hold(login, site_url, ca_file):
    """One centrifuge-js client per transport (websocket, http_stream, sse) through nginx, as carol
    (whom no other test notifies), subscribed to a room of its own that nobody posts in: opened
    before the session's first test, so that the hold runs while the other tests do and
    test_transports.py (last in the session) checks it once IDLE_HOLD_SECONDS have passed.
    Returns ``{"room", "session", "clients": {transport: NodeClients}, "ready": time.monotonic(),
    "seconds": IDLE_HOLD_SECONDS}``."""

    carol = login("carol")
    room = f"hold-{uuid.uuid4().hex[:8]}"
    _join_room(carol, site_url, room)
    started: list[node.NodeClients] = []
    clients = {name: _node_clients(started, site_url, ca_file, carol, names=(name,), channels=[f"rooms:{room}"])
               for name in node.TRANSPORTS}
    for name, each in clients.items():
        each.wait_ready(timeout=30)
    yield {"room": room, "session": carol, "clients": clients, "ready": time.monotonic(),
           "seconds": IDLE_HOLD_SECONDS}
    for each in started:
        each.close()
