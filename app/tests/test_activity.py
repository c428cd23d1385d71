"""Room activity (chat.activity.announce_activity): who gets it, in how many Centrifugo broadcast
calls or outbox rows, on the Channels groups, from every path that saves a message, and that a
failure never loses the message."""
from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from cent import BroadcastRequest
from channels.layers import get_channel_layer
from django.db import DatabaseError

from chat import activity, centrifugo, realtime
from chat.models import Membership, Message, Outbox, Room
from tests.conftest import cent_requests, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def crowd(db):
    """A ``staff`` room with author ``bob`` (staff), five staff members who should get the
    activity, and two members the level refuses (not staff, inactive), all members; plus a staff
    user who is not a member."""
    room = Room.objects.create(name="ops", access="staff")
    author = make_user("bob", is_staff=True)
    wanted = [make_user(f"s{i}", is_staff=True) for i in range(5)]
    refused = [make_user("plainuser"), make_user("gone", is_staff=True, is_active=False)]
    make_user("outsider", is_staff=True)
    for user in [author, *wanted, *refused]:
        Membership.objects.create(room=room, user=user)
    return room, author, wanted


def event_of(message: Message) -> dict:
    return {"type": "room_activity", "room": message.room.name, "seq": message.seq, "id": message.pk,
            "user": message.user.get_username()}


def test_recipients_are_admitted_members_minus_the_author(crowd):
    room, author, wanted = crowd
    message = Message.objects.create(room=room, user=author, text="hi")
    assert activity.recipients(message) == [u.pk for u in wanted]


def test_event_shape(crowd):
    room, author, _ = crowd
    message = Message.objects.create(room=room, user=author, text="hi")
    assert activity.activity_event(message) == {
        "type": "room_activity", "room": "ops", "seq": 1, "id": message.pk, "user": "bob"}


def test_centrifugo_broadcast_in_batches(settings, fake_cent, crowd):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    settings.CHAT_OUTBOX = False
    settings.CHAT_ACTIVITY_BATCH_SIZE = 2
    room, author, wanted = crowd
    message = Message.objects.create(room=room, user=author, text="hi")
    assert activity.announce_activity(message) == [u.pk for u in wanted]
    channels = [f"personal:#{u.pk}" for u in wanted]
    assert cent_requests(fake_cent) == [
        BroadcastRequest(channels=channels[0:2], data=event_of(message), idempotency_key=f"chat-activity-{message.pk}-0"),
        BroadcastRequest(channels=channels[2:4], data=event_of(message), idempotency_key=f"chat-activity-{message.pk}-1"),
        BroadcastRequest(channels=channels[4:5], data=event_of(message), idempotency_key=f"chat-activity-{message.pk}-2"),
    ]


def test_one_broadcast_for_a_small_room(settings, fake_cent, crowd):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    settings.CHAT_OUTBOX = False
    settings.CHAT_PERSONAL_NAMESPACE = "inbox"
    room, author, wanted = crowd
    activity.announce_activity(Message.objects.create(room=room, user=author, text="hi"))
    (request,) = cent_requests(fake_cent)
    assert request.channels == [f"inbox:#{u.pk}" for u in wanted]


def test_outbox_rows_in_batches(settings, fake_cent, crowd):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    settings.CHAT_OUTBOX = True
    settings.CHAT_OUTBOX_PARTITIONS = 4
    settings.CHAT_ACTIVITY_BATCH_SIZE = 2
    room, author, wanted = crowd
    message = Message.objects.create(room=room, user=author, text="hi")
    activity.announce_activity(message)
    rows = list(Outbox.objects.order_by("id"))
    assert [row.method for row in rows] == ["broadcast"] * 3
    assert {row.partition for row in rows} == {activity.outbox.partition_for("rooms:ops", 4)}
    channels = [f"personal:#{u.pk}" for u in wanted]
    assert [row.payload for row in rows] == [
        {"channels": channels[2 * i:2 * i + 2], "data": event_of(message),
         "idempotency_key": f"chat-activity-{message.pk}-{i}"} for i in range(3)]
    assert cent_requests(fake_cent) == []  # the outbox replaces the API call


def test_channels_group_per_recipient(settings, realtime_settings, crowd):
    """Every member listens on their user.<pk> group: the admitted ones but the author get the
    event, the author and the refused members nothing."""
    import asyncio

    settings.CHAT_REALTIME_BACKEND = "channels"
    room, author, wanted = crowd
    layer = get_channel_layer()
    member_pks = list(Membership.objects.filter(room=room).values_list("user_id", flat=True))

    async def listen() -> dict[int, str]:
        channels = {}
        for pk in member_pks:
            channels[pk] = await layer.new_channel()
            await layer.group_add(realtime.user_group(pk), channels[pk])
        return channels

    async def received(channel: str) -> dict | None:
        try:
            return await asyncio.wait_for(layer.receive(channel), 0.1)
        except asyncio.TimeoutError:
            return None

    channels = async_to_sync(listen)()
    message = Message.objects.create(room=room, user=author, text="hi")
    activity.announce_activity(message)
    got = {pk: async_to_sync(received)(channel) for pk, channel in channels.items()}
    wanted_pks = {u.pk for u in wanted}
    assert {pk: event for pk, event in got.items() if event is not None} == {
        pk: {"type": "user.notify", "data": event_of(message)} for pk in wanted_pks}
    assert len(got) == len(wanted_pks) + 3  # the author and two refused members got nothing


def test_nobody_to_tell_no_call(settings, fake_cent, user, lobby):
    settings.CHAT_OUTBOX = False
    Membership.objects.create(room=lobby, user=user)
    assert activity.announce_activity(Message.objects.create(room=lobby, user=user, text="alone")) == []
    assert cent_requests(fake_cent) == []


def test_failures_are_logged_not_raised(settings, crowd, caplog):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    settings.CHAT_OUTBOX = False
    settings.CENTRIFUGO_HTTP_API_URL = ""
    room, author, wanted = crowd
    message = Message.objects.create(room=room, user=author, text="hi")
    assert activity.announce_activity(message) == [u.pk for u in wanted]
    assert "not announced" in caplog.text


def test_outbox_write_failure_keeps_the_transaction(settings, crowd, monkeypatch, caplog):
    from django.db import transaction

    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    settings.CHAT_OUTBOX = True

    def refuse(*args, **kwargs):
        raise DatabaseError("outbox full")

    monkeypatch.setattr("chat.outbox.enqueue", refuse)
    room, author, _ = crowd
    with transaction.atomic():
        message = Message.objects.create(room=room, user=author, text="kept")
        activity.announce_activity(message)
    assert Message.objects.get(pk=message.pk).text == "kept"
    assert "outbox write of activity" in caplog.text


def test_broadcast_retries_a_channel_refused_with_a_retryable_code(settings, monkeypatch):
    """A per-channel 100 (internal) in a broadcast reply is retried on the next node with the
    same key; a per-channel 102 is logged and the call reported failed."""
    from cent import BroadcastResult

    replies = [
        {"responses": [{"result": {}}, {"error": {"code": 100, "message": "internal server error"}}]},
        {"responses": [{"result": {}}, {"result": {}}]},
        {"responses": [{"error": {"code": 102, "message": "unknown channel"}}]},
    ]
    seen = []

    class Client:
        def __init__(self, url, key, timeout):
            self.url = url

        def broadcast(self, request):
            seen.append((self.url, request.idempotency_key))
            return BroadcastResult.model_validate(replies.pop(0))

    monkeypatch.setattr("chat.centrifugo.Client", Client)
    settings.CENTRIFUGO_HTTP_API_URL = "http://a/api,http://b/api"
    settings.CENTRIFUGO_API_ATTEMPTS = 4
    assert centrifugo.broadcast(["personal:#1", "personal:#2"], {"x": 1}, idempotency_key="k") is True
    assert [key for _, key in seen] == ["k", "k"] and seen[0][0] != seen[1][0]
    assert centrifugo.broadcast(["nowhere:#1"], {"x": 1}, idempotency_key="k2") is False


# --- every path that saves a message announces it -------------------------------------------


@pytest.fixture
def announced(monkeypatch):
    calls = []
    real = activity.announce_activity
    monkeypatch.setattr("chat.activity.announce_activity", lambda message: calls.append(message) or real(message))
    return calls


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_post_view_announces(settings, fake_cent, user_client, user, staff_user, lobby, announced, accept):
    settings.CHAT_OUTBOX = False
    Membership.objects.create(room=lobby, user=staff_user)
    user_client.post("/rooms/lobby/messages/", {"text": "hi"}, HTTP_ACCEPT=accept)
    message = Message.objects.get()
    assert announced == [message]
    broadcasts = [r for r in cent_requests(fake_cent) if isinstance(r, BroadcastRequest)]
    assert [(r.channels, r.data) for r in broadcasts] == [([f"personal:#{staff_user.pk}"], event_of(message))]


def test_publish_proxy_announces(settings, fake_cent, client, user, staff_user, lobby, announced):
    settings.CHAT_OUTBOX = False
    Membership.objects.create(room=lobby, user=staff_user)
    body = {"client": "c", "transport": "websocket", "protocol": "json", "encoding": "json",
            "user": str(user.pk), "channel": "rooms:lobby", "data": {"text": "hi"}}
    answer = client.post("/centrifugo/publish/", data=json.dumps(body), content_type="application/json").json()
    message = Message.objects.get()
    assert answer["result"]["data"] == message.as_dict() and announced == [message]
    (request,) = cent_requests(fake_cent)
    assert request.channels == [f"personal:#{staff_user.pk}"]


def test_post_view_activity_failure_keeps_the_message(settings, user_client, staff_user, lobby, monkeypatch):
    settings.CHAT_OUTBOX = False
    settings.CENTRIFUGO_HTTP_API_URL = ""
    Membership.objects.create(room=lobby, user=staff_user)
    response = user_client.post("/rooms/lobby/messages/", {"text": "kept"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 201 and Message.objects.get().text == "kept"
