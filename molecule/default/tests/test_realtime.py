"""End-to-end real-time checks with real WebSocket clients (rtclient.centrifugo).

Two logged-in users connect to Centrifugo nodes of different hosts (each straight to a node's own
client port, from the manifest) and a third through nginx; a message published on one node
reaches the clients of the other node through Redis, and Django's publish proxy stores it.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from centrifuge import CentrifugeError

from rtclient.auth import cookie_header

CHANNEL = "rooms:lobby"


def run(coro):
    return asyncio.run(coro)


def test_message_crosses_nodes_through_redis_and_is_stored(login, manifest, ws_url, site_url, hosts,
                                                          client_factory):
    alice = login("alice")
    bob = login("bob")
    node1 = manifest.centrifugo[0]
    node2 = next(node for node in manifest.centrifugo if node.host != node1.host)
    text = f"cross-node {uuid.uuid4()}"

    async def scenario():
        pub_client = client_factory(node1.client_url, cookie_header(alice))
        sub_client = client_factory(node2.client_url, cookie_header(bob))
        nginx_client = client_factory(ws_url, cookie_header(bob))
        try:
            pub_sub = await pub_client.subscribe(CHANNEL)
            inbox_node2 = await sub_client.subscribe(CHANNEL)
            inbox_nginx = await nginx_client.subscribe(CHANNEL)
            await pub_sub.publish({"text": text})
            got_node2 = await inbox_node2.wait_for(lambda d: d.get("text") == text, timeout=5)
            got_nginx = await inbox_nginx.wait_for(lambda d: d.get("text") == text, timeout=5)
            return got_node2, got_nginx
        finally:
            for client in (pub_client, sub_client, nginx_client):
                await client.close()

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
        client = client_factory(ws_url, None)
        try:
            await client.connect(wait=False)
            await asyncio.wait_for(client.events.disconnected.wait(), 5)
            return client.events.disconnects[0]
        finally:
            await client.close()

    disconnect = run(scenario())
    # Django's connect proxy answers {"disconnect": {"code": 4501, "reason": "unauthorized"}}.
    assert disconnect.code == 4501


def test_staff_room_is_refused_to_a_regular_user(login, ws_url, client_factory):
    bob = login("bob")

    async def scenario():
        client = client_factory(ws_url, cookie_header(bob))
        try:
            with pytest.raises((CentrifugeError, asyncio.TimeoutError)):
                await client.subscribe("rooms:staff", timeout=3)
        finally:
            await client.close()

    run(scenario())


def test_foreign_origin_is_refused(login, ws_url, client_factory):
    alice = login("alice")

    async def scenario():
        # A logged-in user's cookie, but a page from another origin: client.allowed_origins refuses it.
        client = client_factory(ws_url, cookie_header(alice), origin="https://evil.example")
        try:
            await client.connect(wait=False)
            with pytest.raises((CentrifugeError, asyncio.TimeoutError)):
                await client.ready(3)
        finally:
            await client.close()

    run(scenario())
