"""End-to-end real-time checks with real WebSocket clients (centrifuge-python).

Two logged-in users connect to different Centrifugo nodes (each straight to a node's own client
port) and a third through nginx; a message published on one node reaches the clients of the
other node through Redis, and Django's publish proxy stores it.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from centrifuge import CentrifugeError

from tests import rtclient

CHANNEL = "rooms:lobby"


def run(coro):
    return asyncio.run(coro)


def node_ws_url(address: str) -> str:
    return f"ws://{address}:8000{rtclient.WEBSOCKET_PATH}"


def test_message_crosses_nodes_through_redis_and_is_stored(login, address, groups, ws_url, site_url, hosts,
                                                          client_factory):
    alice = login("alice")
    bob = login("bob")
    node1, node2 = (address[name] for name in groups["centrifugo"][:2])
    text = f"cross-node {uuid.uuid4()}"

    async def scenario():
        pub_client, _ = client_factory(node_ws_url(node1), rtclient.cookie_header(alice))
        sub_client, _ = client_factory(node_ws_url(node2), rtclient.cookie_header(bob))
        nginx_client, _ = client_factory(ws_url, rtclient.cookie_header(bob))
        try:
            pub_sub, _ = await rtclient.subscribe(pub_client, CHANNEL)
            _, inbox_node2 = await rtclient.subscribe(sub_client, CHANNEL)
            _, inbox_nginx = await rtclient.subscribe(nginx_client, CHANNEL)
            await pub_sub.publish({"text": text})
            got_node2 = await inbox_node2.wait_for(lambda d: d.get("text") == text, timeout=5)
            got_nginx = await inbox_nginx.wait_for(lambda d: d.get("text") == text, timeout=5)
            return got_node2, got_nginx
        finally:
            for client in (pub_client, sub_client, nginx_client):
                await client.disconnect()

    got_node2, got_nginx = run(scenario())
    # The publish proxy rewrote the data: the username and the stored message id are added.
    assert got_node2["user"] == "alice"
    assert got_node2 == got_nginx
    assert isinstance(got_node2["id"], int)

    # Stored in Django's database: the room page renders it from there.
    page = bob.get(f"{site_url}/rooms/lobby/", timeout=10)
    assert page.status_code == 200 and text in page.text
    django = hosts["django"][0]
    count = django.check_output(
        "chat-manage shell -c "
        f"\"from chat.models import Message; print(Message.objects.filter(text='{text}', user__username='alice').count())\""
    )
    assert count.strip().splitlines()[-1] == "1"


def test_anonymous_client_is_refused(ws_url, client_factory):
    async def scenario():
        client, events = client_factory(ws_url, None)
        try:
            await client.connect()
            await asyncio.wait_for(events.disconnected.wait(), 5)
            return events.disconnects[0]
        finally:
            await client.disconnect()

    ctx = run(scenario())
    # Django's connect proxy answers {"disconnect": {"code": 4501, "reason": "unauthorized"}}.
    assert ctx.code == 4501


def test_staff_room_is_refused_to_a_regular_user(login, ws_url, client_factory):
    bob = login("bob")

    async def scenario():
        client, _ = client_factory(ws_url, rtclient.cookie_header(bob))
        try:
            with pytest.raises((CentrifugeError, asyncio.TimeoutError)):
                await rtclient.subscribe(client, "rooms:staff", timeout=3)
        finally:
            await client.disconnect()

    run(scenario())


def test_foreign_origin_is_refused(login, ws_url, client_factory):
    alice = login("alice")

    async def scenario():
        # A logged-in user's cookie, but a page from another origin: client.allowed_origins refuses it.
        client, _ = client_factory(ws_url, rtclient.cookie_header(alice), origin="https://evil.example")
        try:
            await client.connect()
            with pytest.raises((CentrifugeError, asyncio.TimeoutError)):
                await client.ready(3)
        finally:
            await client.disconnect()

    run(scenario())
