"""Personal channels and server-side subscriptions: ``notify_user`` (the app's server push, run
as the operators' management command on a Django host) reaches every connection of one user and
no one else's, on both realtime backends.

- Centrifugo: every connection of a logged-in user is subscribed by the server to the user's
  personal channel (``client.subscribe_to_user_personal_channel``, the namespace from the
  manifest); the publication arrives on the client's own ``publication`` event, over any
  transport and in both auth modes (here a WebSocket and an SSE connection of alice with her
  session cookie, through the connect proxy, and one with a connection JWT; centrifuge-js under
  Node).
- Channels: every consumer of the user joins the ``user.<id>`` group: the notification consumer
  (``/ws/user/``) and a room's consumer forward the push as a ``notification`` frame.

https://centrifugal.dev/docs/server/server_subs
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
import uuid

from rtclient import auth
from rtclient.auth import cookie_header
from rtclient.channels import ChannelsClient, channels_url, notifications_url


def notify(hosts, username: str, data: dict) -> None:
    """``chat-manage notify_user USERNAME --data JSON`` on the first Django host."""
    hosts["django"][0].check_output(f"chat-manage notify_user {username} --data {shlex.quote(json.dumps(data))}")


def test_notify_user_reaches_every_connection_of_the_user_on_centrifugo(login, node_clients, hosts, manifest,
                                                                      site_url):
    alice, bob = login("alice"), login("bob")
    alice_clients = [node_clients(alice, names=(name,)) for name in ("websocket", "sse")]
    # JWT: no cookie, the connection token's subject is the user.
    alice_clients.append(node_clients(alice, names=("websocket",), token=auth.connection_token(alice, site_url)))
    bob_clients = node_clients(bob, names=("websocket",))
    for clients in (*alice_clients, bob_clients):
        clients.wait_ready(timeout=30)
    marker = uuid.uuid4().hex
    notify(hosts, "alice", {"type": "notice", "text": marker})
    prefix = manifest["personal_namespace"] + ":#"
    for clients in alice_clients:
        event = clients.wait_for(lambda e: e["event"] == "publication" and e["data"].get("text") == marker, 5,
                                 "the notification")
        assert event["server"] and event["channel"].startswith(prefix), event
    time.sleep(1)
    assert not [e for e in bob_clients.publications() if e["data"].get("text") == marker], \
        "bob received alice's notification"


def test_notify_user_reaches_every_consumer_of_the_user_on_channels(login, site_url, ca_file, hosts):
    alice, bob = login("alice"), login("bob")
    marker = uuid.uuid4().hex

    def is_ours(frame: dict) -> bool:
        return frame.get("type") == "notification" and frame["data"].get("text") == marker

    async def scenario() -> None:
        async with ChannelsClient(notifications_url(site_url), cookie_header(alice), site_url, ca_file,
                                  history=False) as alice_user, \
                ChannelsClient(channels_url(site_url, "lobby"), cookie_header(alice), site_url, ca_file) as alice_room, \
                ChannelsClient(notifications_url(site_url), cookie_header(bob), site_url, ca_file,
                               history=False) as bob_user:
            # Each consumer joined user.<id> before it accepted (the notification consumer) or before
            # its history frame (the room's), so the push below cannot overtake a group_add.
            await asyncio.to_thread(notify, hosts, "alice", {"type": "notice", "text": marker})
            await alice_user.wait_for(is_ours, timeout=5)
            await alice_room.wait_for(is_ours, timeout=5)
            try:
                frame = await bob_user.wait_for(is_ours, timeout=1.5)
            except asyncio.TimeoutError:
                return
            raise AssertionError(f"bob received alice's notification: {frame}")

    asyncio.run(scenario())
