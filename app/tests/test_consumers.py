"""Channels WebSocket endpoint ``/ws/chat/<room>/`` through the full ASGI stack
(chatsite.asgi.application: origin check, ?token= JWT, session cookie, URL router), driven by
channels.testing.WebsocketCommunicator over the in-memory channel layer."""
from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from tests.conftest import JWT_SECRET, LEVEL_CASES, cent_requests

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

ORIGIN = b"http://localhost"


def communicator(room: str = "lobby", cookie: str | None = None, query: str = "",
                 origin: bytes | None = ORIGIN) -> WebsocketCommunicator:
    from chatsite.asgi import application

    headers = [(b"host", b"localhost")]
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    path = f"/ws/chat/{room}/" + (f"?{query}" if query else "")
    return WebsocketCommunicator(application, path, headers=headers)


def session_cookie(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def join(comm: WebsocketCommunicator) -> dict[str, Any]:
    """Connect and return the first frame (history)."""
    connected, _ = await comm.connect()
    assert connected
    frame = await comm.receive_json_from()
    assert frame["type"] == "history"
    return frame


async def join_alice_and_bob(alice_cookie: str, staff_user: Any) -> tuple[WebsocketCommunicator, WebsocketCommunicator]:
    """Alice (a regular user) and Bob (the staff user), both joined to the lobby."""
    alice = communicator(cookie=alice_cookie)
    bob = communicator(cookie=await sync_to_async(session_cookie)(staff_user))
    await join(alice)
    await join(bob)
    return alice, bob


async def assert_closed_with(comm: WebsocketCommunicator, code: int) -> None:
    """Accepted, then closed with ``code`` (what a real client observes)."""
    connected, _ = await comm.connect()
    assert connected
    assert await comm.receive_output() == {"type": "websocket.close", "code": code}


@pytest.fixture(autouse=True)
def rooms(realtime_settings, transactional_db) -> dict[str, Any]:
    """The 0002 data-migration rooms; recreated because transactional tests flush the tables."""
    from chat.models import Room

    return {
        "lobby": Room.objects.get_or_create(name="lobby", defaults={"title": "Lobby"})[0],
        "staff": Room.objects.get_or_create(name="staff", defaults={"access": "staff"})[0],
    }


@pytest.fixture
def lobby(rooms):
    return rooms["lobby"]


@pytest.fixture
def staff_room(rooms):
    return rooms["staff"]


@pytest.fixture
def alice_cookie(realtime_settings, user) -> str:
    return session_cookie(user)


async def test_session_user_joins_and_gets_history(alice_cookie):
    comm = communicator(cookie=alice_cookie)
    assert await join(comm) == {"type": "history", "messages": []}
    await comm.disconnect()


async def test_anonymous_closed_4001(realtime_settings):
    await assert_closed_with(communicator(), 4001)


async def test_missing_origin_refused(alice_cookie):
    connected, _ = await communicator(cookie=alice_cookie, origin=None).connect()
    assert not connected


async def test_unknown_room_closed_4003(alice_cookie):
    await assert_closed_with(communicator("nosuchroom", cookie=alice_cookie), 4003)


async def test_staff_room_refused_for_non_staff(alice_cookie, staff_room):
    await assert_closed_with(communicator("staff", cookie=alice_cookie), 4003)


async def test_staff_room_allowed_for_staff(realtime_settings, staff_user, staff_room):
    comm = communicator("staff", cookie=await sync_to_async(session_cookie)(staff_user))
    await join(comm)
    await comm.disconnect()


async def test_history_last_50_of_60_oldest_first(alice_cookie, user, lobby):
    from chat.models import Message

    @sync_to_async
    def make() -> None:
        for i in range(60):
            Message.objects.create(room=lobby, user=user, text=f"m{i}")

    await make()
    comm = communicator(cookie=alice_cookie)
    frame = await join(comm)
    assert [m["text"] for m in frame["messages"]] == [f"m{i}" for i in range(10, 60)]
    assert set(frame["messages"][0]) == {"id", "seq", "room", "user", "text", "created_at"}
    await comm.disconnect()


async def test_message_broadcast_to_room_and_saved(alice_cookie, staff_user, lobby):
    from chat.models import Message

    alice, bob = await join_alice_and_bob(alice_cookie, staff_user)
    await alice.send_json_to({"text": "  hello  "})
    for comm in (alice, bob):
        frame = await comm.receive_json_from()
        assert frame["type"] == "message"
        assert frame["message"]["text"] == "hello"
        assert frame["message"]["user"] == "alice" and frame["message"]["room"] == "lobby"
    saved = await sync_to_async(lambda: list(Message.objects.values_list("text", flat=True)))()
    assert saved == ["hello"]
    await alice.disconnect()
    await bob.disconnect()


@pytest.mark.parametrize(
    "payload, code",
    [({"text": "x" * 1001}, 1002), ({"text": "   "}, 1001), ({"nope": 1}, 1000), (["x"], 1000)],
)
async def test_invalid_message_error_frame_nothing_saved(alice_cookie, lobby, payload, code):
    from chat.models import Message

    comm = communicator(cookie=alice_cookie)
    await join(comm)
    await comm.send_json_to(payload)
    frame = await comm.receive_json_from()
    assert frame["type"] == "error" and frame["code"] == code and frame["message"]
    # still connected: a valid message afterwards goes through
    await comm.send_json_to({"text": "ok"})
    assert (await comm.receive_json_from())["message"]["text"] == "ok"
    texts = await sync_to_async(lambda: list(Message.objects.values_list("text", flat=True)))()
    assert texts == ["ok"]
    await comm.disconnect()


async def test_non_json_frame_is_error_1000(alice_cookie):
    comm = communicator(cookie=alice_cookie)
    await join(comm)
    await comm.send_to(text_data="not json")
    assert (await comm.receive_json_from())["code"] == 1000
    await comm.disconnect()


def _token(sub: str, exp_offset: int, secret: str = JWT_SECRET) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + exp_offset}, secret, algorithm="HS256")


async def test_valid_token_accepted(realtime_settings, user):
    comm = communicator(query=f"token={_token(str(user.pk), 60)}")
    await join(comm)
    await comm.send_json_to({"text": "via token"})
    assert (await comm.receive_json_from())["message"]["user"] == "alice"
    await comm.disconnect()


async def test_token_from_view_accepted(realtime_settings, user):
    from chat import tokens

    comm = communicator(query=f"token={tokens.connection_token(user)}")
    await join(comm)
    await comm.disconnect()


async def test_token_user_wins_over_session_cookie(realtime_settings, user, staff_user, staff_room):
    """The session stack inside must not replace the token's user."""
    comm = communicator("staff", cookie=await sync_to_async(session_cookie)(user),
                        query=f"token={_token(str(staff_user.pk), 60)}")
    await join(comm)
    await comm.disconnect()


@pytest.mark.parametrize(
    "token",
    ["garbage", "", "WRONG_SECRET", "EXPIRED", "NOT_A_PK", "NO_SUCH_USER"],
)
async def test_bad_or_expired_token_closed_4001(realtime_settings, user, token):
    token = {
        "WRONG_SECRET": _token(str(user.pk), 60, secret="another-secret-of-32-bytes-or-more!!"),
        "EXPIRED": _token(str(user.pk), -10),
        "NOT_A_PK": _token("alice", 60),
        "NO_SUCH_USER": _token("999999", 60),
    }.get(token, token)
    await assert_closed_with(communicator(query=f"token={token}"), 4001)


async def test_token_refused_without_secret(realtime_settings, user):
    token = _token(str(user.pk), 60)
    realtime_settings.CHAT_JWT_SECRET = ""
    await assert_closed_with(communicator(query=f"token={token}"), 4001)


async def test_presence_join_heartbeat_leave(alice_cookie, staff_user, lobby):
    from chat import presence

    alice, bob = await join_alice_and_bob(alice_cookie, staff_user)
    await alice.send_json_to({"type": "heartbeat"})
    assert await alice.receive_json_from() == {"type": "presence", "users": ["alice", "bob"]}
    await bob.disconnect()
    assert await presence.members("lobby") == ["alice"]
    await alice.disconnect()
    assert await presence.members("lobby") == []


async def test_presence_drops_expired_entries(realtime_settings):
    from chat import presence

    await presence.touch("lobby", "carol")
    presence._local["lobby"]["dave"] = time.time() - 1
    assert await presence.members("lobby") == ["carol"]
    assert "dave" not in presence._local["lobby"]


# --- cross-delivery with CHAT_REALTIME_BACKEND=both (chat.realtime.relay) --------------------

async def test_both_message_also_published_to_centrifugo(settings, fake_cent, alice_cookie, lobby):
    """A message sent on the Channels path reaches Centrifugo subscribers: the consumer
    publishes the saved message dict into rooms:<name> through the cent client."""
    from cent import PublishRequest

    settings.CHAT_REALTIME_BACKEND = "both"
    comm = communicator(cookie=alice_cookie)
    await join(comm)
    await comm.send_json_to({"text": "to both paths"})
    frame = await comm.receive_json_from()
    assert frame["type"] == "message"
    # The consumer handles one event at a time, so its own echo (group event) is dispatched
    # only after receive_json -- including the relay -- has returned.
    assert cent_requests(fake_cent) == [PublishRequest(channel="rooms:lobby", data=frame["message"],
                                                       idempotency_key=f"chat-rooms:lobby-{frame['message']['id']}")]
    await comm.disconnect()


@pytest.mark.parametrize("backend", ["channels", "centrifugo"])
async def test_no_centrifugo_publish_unless_both(settings, fake_cent, alice_cookie, lobby, backend):
    settings.CHAT_REALTIME_BACKEND = backend
    comm = communicator(cookie=alice_cookie)
    await join(comm)
    await comm.send_json_to({"text": "channels only"})
    assert (await comm.receive_json_from())["message"]["text"] == "channels only"
    assert cent_requests(fake_cent) == []
    await comm.disconnect()


async def test_both_centrifugo_failure_not_fatal(settings, alice_cookie, staff_user, lobby, caplog):
    settings.CHAT_REALTIME_BACKEND = "both"
    settings.CENTRIFUGO_HTTP_API_URL = ""  # publish fails (logged)
    alice, bob = await join_alice_and_bob(alice_cookie, staff_user)
    await alice.send_json_to({"text": "first"})
    await alice.send_json_to({"text": "second"})
    for comm in (alice, bob):
        texts = [(await comm.receive_json_from())["message"]["text"] for _ in range(2)]
        assert texts == ["first", "second"]
    assert "not relayed to centrifugo" in caplog.text
    await alice.disconnect()
    await bob.disconnect()


async def test_both_publish_proxy_message_reaches_channels_client(settings, user, staff_user, lobby):
    """A message sent through Centrifugo (publish proxy) reaches a browser on the Channels
    path: the proxy saves it and group_sends it to the room."""
    from chat.models import Message

    settings.CHAT_REALTIME_BACKEND = "both"
    bob = communicator(cookie=await sync_to_async(session_cookie)(staff_user))
    await join(bob)
    body = {"client": "c-1", "transport": "websocket", "protocol": "json", "encoding": "json",
            "user": str(user.pk), "channel": "rooms:lobby", "data": {"text": "via centrifugo"}}

    def post() -> dict[str, Any]:
        response = Client().post("/centrifugo/publish/", data=json.dumps(body),
                                 content_type="application/json")
        return response.json()

    result = await sync_to_async(post)()
    data = result["result"]["data"]
    assert await bob.receive_json_from() == {"type": "message", "message": data}
    saved = await sync_to_async(lambda: Message.objects.get().as_dict())()
    assert data == saved and data["user"] == "alice" and data["text"] == "via centrifugo"
    await bob.disconnect()


@pytest.mark.parametrize("backend", ["centrifugo", "channels"])
async def test_publish_proxy_no_group_send_unless_both(settings, user, staff_user, lobby, backend):
    settings.CHAT_REALTIME_BACKEND = backend
    bob = communicator(cookie=await sync_to_async(session_cookie)(staff_user))
    await join(bob)
    body = {"client": "c-1", "transport": "websocket", "protocol": "json", "encoding": "json",
            "user": str(user.pk), "channel": "rooms:lobby", "data": {"text": "centrifugo only"}}
    response = await sync_to_async(Client().post)(
        "/centrifugo/publish/", data=json.dumps(body), content_type="application/json")
    assert "result" in response.json()
    assert await bob.receive_nothing(timeout=0.2)
    await bob.disconnect()


# --- access levels (chat.access) -------------------------------------------------------------

@pytest.mark.parametrize("level, kind, admitted", LEVEL_CASES)
async def test_access_levels(level_rooms, level_users, level, kind, admitted):
    """Admitted users join; others are closed with 4003 (an inactive user has no session: 4001)."""
    user = level_users[kind]
    comm = communicator(level_rooms[level].name, cookie=await sync_to_async(session_cookie)(user))
    if admitted:
        await join(comm)
        await comm.disconnect()
    else:
        await assert_closed_with(comm, 4001 if kind == "inactive" else 4003)


# --- notifications: user.<pk> groups, /ws/user/, room activity ------------------------------

def user_communicator(cookie: str | None = None) -> WebsocketCommunicator:
    from chatsite.asgi import application

    headers = [(b"host", b"localhost"), (b"origin", ORIGIN)]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/user/", headers=headers)


async def test_notification_socket_anonymous_closed_4001(realtime_settings):
    await assert_closed_with(user_communicator(), 4001)


async def test_notify_user_reaches_only_that_users_sockets(settings, alice_cookie, user, staff_user):
    """notify_user on Channels: the user's /ws/user/ socket and room sockets get the
    notification frame; another user's socket gets nothing."""
    from chat import realtime

    settings.CHAT_REALTIME_BACKEND = "channels"
    alice_user_socket = user_communicator(alice_cookie)
    assert (await alice_user_socket.connect())[0]
    alice_room = communicator(cookie=alice_cookie)
    await join(alice_room)
    bob = user_communicator(await sync_to_async(session_cookie)(staff_user))
    assert (await bob.connect())[0]

    data = {"type": "notice", "text": "maintenance at 18:00"}
    await sync_to_async(realtime.notify_user)(user, data)
    assert await alice_user_socket.receive_json_from() == {"type": "notification", "data": data}
    assert await alice_room.receive_json_from() == {"type": "notification", "data": data}
    assert await bob.receive_nothing(timeout=0.2)
    for comm in (alice_user_socket, alice_room, bob):
        await comm.disconnect()


async def test_notification_socket_leaves_group_on_disconnect(settings, alice_cookie, user):
    from channels.layers import get_channel_layer

    from chat import realtime

    comm = user_communicator(alice_cookie)
    assert (await comm.connect())[0]
    layer = get_channel_layer()
    assert layer.groups.get(realtime.user_group(user))
    await comm.disconnect()
    assert not layer.groups.get(realtime.user_group(user))


async def test_message_on_channels_announces_activity_to_members(settings, alice_cookie, user, staff_user, lobby):
    """A message sent on the room socket reaches the other members' /ws/user/ sockets as room
    activity; the author gets none."""
    from chat.models import Membership

    settings.CHAT_REALTIME_BACKEND = "channels"

    @sync_to_async
    def members() -> None:
        Membership.objects.create(room=lobby, user=user)
        Membership.objects.create(room=lobby, user=staff_user)

    await members()
    bob = user_communicator(await sync_to_async(session_cookie)(staff_user))
    assert (await bob.connect())[0]
    alice_inbox = user_communicator(alice_cookie)
    assert (await alice_inbox.connect())[0]
    alice = communicator(cookie=alice_cookie)
    await join(alice)
    await alice.send_json_to({"text": "ping"})
    message = (await alice.receive_json_from())["message"]
    assert await bob.receive_json_from(timeout=2) == {"type": "notification", "data": {
        "type": "room_activity", "room": "lobby", "seq": message["seq"], "id": message["id"], "user": "alice"}}
    assert await alice_inbox.receive_nothing(timeout=0.2)
    read = await sync_to_async(lambda: Membership.objects.get(room=lobby, user=user).last_read_seq)()
    assert read == message["seq"]  # the author has read their own message
    for comm in (bob, alice_inbox, alice):
        await comm.disconnect()


# --- every message re-checks the room's level; its activity outbox rows share its transaction ---

async def send_after_change(alice_cookie: str, change) -> WebsocketCommunicator:
    """Alice joins the lobby, ``change`` (sync, run in a thread) alters the room or the user,
    then she sends a message; returns her communicator."""
    comm = communicator(cookie=alice_cookie)
    await join(comm)
    await sync_to_async(change)()
    await comm.send_json_to({"text": "after the change"})
    return comm


async def test_level_tightened_after_connect_refuses_the_next_message(alice_cookie, lobby):
    from chat.models import Message, Room

    comm = await send_after_change(alice_cookie, lambda: Room.objects.filter(pk=lobby.pk).update(access="staff"))
    assert await comm.receive_output() == {"type": "websocket.close", "code": 4003}
    assert not await sync_to_async(Message.objects.exists)()


async def test_user_deactivated_after_connect_refuses_the_next_message(alice_cookie, user, lobby):
    from django.contrib.auth import get_user_model

    from chat.models import Message

    comm = await send_after_change(
        alice_cookie, lambda: get_user_model().objects.filter(pk=user.pk).update(is_active=False))
    assert await comm.receive_output() == {"type": "websocket.close", "code": 4003}
    assert not await sync_to_async(Message.objects.exists)()


async def test_room_deleted_after_connect_refuses_the_next_message(alice_cookie, lobby):
    from chat.models import Message, Room

    comm = await send_after_change(alice_cookie, lambda: Room.objects.filter(pk=lobby.pk).delete())
    assert await comm.receive_output() == {"type": "websocket.close", "code": 4003}
    assert not await sync_to_async(Message.objects.exists)()


async def test_level_still_admitting_keeps_the_socket(alice_cookie, lobby):
    """A change that still admits the user (here: nothing but the title) changes nothing."""
    from chat.models import Room

    comm = await send_after_change(alice_cookie, lambda: Room.objects.filter(pk=lobby.pk).update(title="Hall"))
    assert (await comm.receive_json_from())["message"]["text"] == "after the change"
    await comm.disconnect()


async def test_activity_announced_inside_the_message_transaction(settings, monkeypatch, alice_cookie, user, staff_user,
                                                                 lobby):
    """announce_activity runs in the message's transaction.atomic() block (its outbox rows commit
    with the message); with the outbox, the broadcast row is written."""
    from django.db import connection

    from chat import activity
    from chat.models import Membership, Outbox

    settings.CHAT_REALTIME_BACKEND = "both"
    settings.CHAT_OUTBOX = True
    seen = []
    real = activity.announce_activity

    def spy(message):
        seen.append((message.text, connection.in_atomic_block))
        return real(message)

    monkeypatch.setattr("chat.activity.announce_activity", spy)
    await sync_to_async(Membership.objects.create)(room=lobby, user=staff_user)
    comm = communicator(cookie=alice_cookie)
    await join(comm)
    await comm.send_json_to({"text": "in one transaction"})
    message = (await comm.receive_json_from())["message"]
    assert seen == [("in one transaction", True)]
    rows = await sync_to_async(lambda: list(Outbox.objects.filter(method="broadcast").values_list("payload", flat=True)))()
    assert [row["data"]["id"] for row in rows] == [message["id"]]
    await comm.disconnect()


# --- groups are joined before the frame (or the accept) a client waits for ------------------

@pytest.fixture
def slow_group_add(monkeypatch):
    """The in-memory layer's group_add takes 0.1 s (a remote layer such as Redis takes time too):
    a consumer that answered before joining its groups would miss what is sent right after."""
    import asyncio

    from channels.layers import InMemoryChannelLayer

    real = InMemoryChannelLayer.group_add

    async def slow(self, group, channel):
        await asyncio.sleep(0.1)
        await real(self, group, channel)

    monkeypatch.setattr(InMemoryChannelLayer, "group_add", slow)


async def test_notification_socket_in_group_once_open(settings, slow_group_add, alice_cookie, user):
    from chat import realtime

    settings.CHAT_REALTIME_BACKEND = "channels"
    comm = user_communicator(alice_cookie)
    assert (await comm.connect())[0]
    data = {"type": "notice", "text": "right after the open"}
    await sync_to_async(realtime.notify_user)(user, data)
    assert await comm.receive_json_from() == {"type": "notification", "data": data}
    await comm.disconnect()


async def test_room_socket_in_groups_once_history_sent(settings, slow_group_add, alice_cookie, user, staff_user,
                                                       lobby):
    from chat import realtime

    settings.CHAT_REALTIME_BACKEND = "channels"
    comm = communicator(cookie=alice_cookie)
    await join(comm)
    data = {"type": "notice", "text": "right after the history"}
    await sync_to_async(realtime.notify_user)(user, data)
    await sync_to_async(realtime.publish)("rooms:lobby", {"text": "room frame"})
    assert await comm.receive_json_from() == {"type": "notification", "data": data}
    assert await comm.receive_json_from() == {"type": "message", "message": {"text": "room frame"}}
    await comm.disconnect()
