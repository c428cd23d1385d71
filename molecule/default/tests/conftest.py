"""Fixtures for verifying a deployed stack: its hosts by inventory group, their addresses, the
site URL and the users' credentials.

Runs under molecule's testinfra verifier (inventory from MOLECULE_INVENTORY_FILE), and against
`make up` as well (RTSTACK_INVENTORY=inventories/local/hosts.yml, RTSTACK_SITE_URL=https://127.0.0.1:8443,
RTSTACK_SITE_HTTP_URL=http://127.0.0.1:8080, RTSTACK_CREDENTIALS_DIR=inventories/local/credentials).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import testinfra

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from tests import rtclient  # noqa: E402


@pytest.fixture(scope="session")
def groups() -> dict[str, list[str]]:
    """Inventory group -> host names."""
    inventory = os.environ.get("RTSTACK_INVENTORY") or os.environ["MOLECULE_INVENTORY_FILE"]
    return rtclient.ansible_groups(inventory)


@pytest.fixture(scope="session")
def hosts(groups):
    """Inventory group -> testinfra hosts (docker backend: the test hosts are containers)."""
    return {group: [testinfra.get_host(f"docker://{name}") for name in names]
            for group, names in groups.items()}


@pytest.fixture(scope="session")
def address(groups):
    """Host name -> its IP address on the test network."""
    names = {name for members in groups.values() for name in members}
    return {name: rtclient.container_address(name) for name in names}


@pytest.fixture(scope="session")
def site_url() -> str:
    """The site's origin as a browser sees it (nginx), without a trailing slash."""
    return os.environ.get("RTSTACK_SITE_URL", "https://127.0.0.1:18443").rstrip("/")


@pytest.fixture(scope="session")
def site_http_url() -> str:
    """The site's plain-HTTP origin, which only redirects to HTTPS."""
    return os.environ.get("RTSTACK_SITE_HTTP_URL", "http://127.0.0.1:18080").rstrip("/")


@pytest.fixture(scope="session")
def ca_file() -> str:
    """The test CA that signs the test hosts. certificate (made by the nginx role)."""
    return str(Path(os.environ["RTSTACK_CREDENTIALS_DIR"]) / "tls" / "ca.crt")


@pytest.fixture(scope="session")
def ws_url(site_url) -> str:
    """Centrifugo's WebSocket endpoint through nginx."""
    return site_url.replace("http", "ws", 1) + rtclient.WEBSOCKET_PATH


@pytest.fixture(scope="session")
def credentials():
    """Reads a generated secret by name (e.g. "user_alice")."""
    return rtclient.read_credential


@pytest.fixture(scope="session")
def login(site_url, credentials, ca_file):
    """Logs a demo user in through Django's login form; returns the requests session."""
    def _login(username: str):
        return rtclient.django_login(site_url, username, credentials(f"user_{username}"), verify=ca_file)
    return _login


@pytest.fixture(scope="session")
def client_factory(site_url, ca_file):
    """make_client with the site's origin and CA: client_factory(ws_url, cookie, origin=...)."""
    def _make(ws_url: str, cookie: str | None, origin: str | None = site_url):
        return rtclient.make_client(ws_url, cookie, origin, ca_file=ca_file)
    return _make
