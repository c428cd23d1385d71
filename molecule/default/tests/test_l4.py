"""Centrifugo's WebSocket through nginx's l4 listener (nginx_centrifugo_mode l4: this scenario runs it, the ha
scenario l7). nginx passes TCP through its stream module and Centrifugo itself answers the TLS handshake and
HTTP, on the site's host name at another port. Every test of this scenario that takes ``ws_url`` connects there,
with the session cookie (the connect proxy: cookies are not isolated by port) or a connection JWT
(test_channels.py). The site's port keeps Centrifugo's other transports and its own WebSocket location,
proxied to Centrifugo's TLS port over https.
"""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from rtclient import auth
from rtclient.centrifugo import websocket_url


@pytest.fixture(scope="module")
def l4(manifest):
    if manifest.centrifugo_mode != "l4":
        pytest.skip(f"this stack runs nginx_centrifugo_mode {manifest.centrifugo_mode}")
    return manifest


def as_https(url: str) -> str:
    parts = urlsplit(url)
    return f"https://{parts.netloc}{parts.path}"


def test_l4_listener_is_centrifugo_itself_and_the_site_port_is_nginx(l4, ws_url, site_url, ca_file):
    """A GET of the WebSocket path without an upgrade: on the l4 port Centrifugo answers (its certificate is the
    site's, so the name verifies; no nginx Server header), on the site's port nginx does."""
    assert ws_url.startswith("wss://") and urlsplit(ws_url).port == l4["centrifugo_public"]["websocket_port"]
    direct = requests.get(as_https(ws_url), verify=ca_file, timeout=10)
    assert "nginx" not in direct.headers.get("Server", ""), direct.headers
    assert 400 <= direct.status_code < 500, f"Centrifugo answered a GET without upgrade with {direct.status_code}"
    proxied = requests.get(as_https(websocket_url(site_url)), verify=ca_file, timeout=10)
    assert proxied.headers.get("Server") == "nginx", proxied.headers


def test_site_port_websocket_still_reaches_centrifugo_over_https(l4, site_url, login, post_message, client_factory):
    """The fallback for networks that allow port 443 only: the site's own WebSocket location, proxied to
    Centrifugo's TLS client port, with a JWT and with the session cookie, gets a message Django stores."""
    bob = login("bob")
    token = auth.connection_token(bob, site_url)
    text = f"site port {uuid.uuid4().hex[:8]}"

    async def scenario():
        clients = [client_factory(websocket_url(site_url), None, token=token),
                   client_factory(websocket_url(site_url), auth.cookie_header(bob))]
        try:
            inboxes = [await client.subscribe("rooms:lobby") for client in clients]
            message = await asyncio.to_thread(post_message, login("alice"), "lobby", text)
            return [await inbox.wait_for(lambda d: d.get("id") == message["id"], timeout=10) for inbox in inboxes]
        finally:
            for client in clients:
                await client.close()

    got = asyncio.run(scenario())
    assert [d["text"] for d in got] == [text, text]
