"""Room activity (chat.activity.announce_activity): who gets it, in how many Centrifugo broadcast
calls or outbox rows, on the Channels groups, from every path that saves a message, that the live
sends wait for the commit and run in a background thread the message path does not wait for, and
that a failure never loses the message.

The autouse fixture ``_activity_in_the_foreground`` (tests/conftest.py) runs the live sends in the
calling thread; these tests run inside a transaction, so they let the on_commit callbacks run with
``django_capture_on_commit_callbacks(execute=True)``."""
from __future__ import annotations

import json
import threading

import pytest
from asgiref.sync import async_to_sync
from cent import BroadcastRequest
from channels.layers import get_channel_layer
from django.db import DatabaseError, transaction

from chat import activity, centrifugo, realtime
from chat.models import Membership, Message, Outbox, Room
from tests.conftest import cent_requests, make_user

pytestmark = pytest.mark.django_db

#: chat.activity._start as defined (the autouse fixture replaces it; collected before it runs).
REAL_START = activity._start


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


def test_centrifugo_broadcast_in_batches(settings, fake_cent, crowd, django_capture_on_commit_callbacks):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    settings.CHAT_OUTBOX = False
    settings.CHAT_ACTIVITY_BATCH_SIZE = 2
    room, author, wanted = crowd
    message = Message.objects.create(room=room, user=author, text="hi")
    with django_capture_on_commit_callbacks(execute=True):
        assert activity.announce_activity(message) == [u.pk for u in wanted]
    channels = [f"personal:#{u.pk}" for u in wanted]
    assert cent_requests(fake_cent) == [
        BroadcastRequest(channels=channels[0:2], data=event_of(message), idempotency_key=f"chat-activity-{message.pk}-0"),
        BroadcastRequest(channels=channels[2:4], data=event_of(message), idempotency_key=f"chat-activity-{message.pk}-1"),
        BroadcastRequest(channels=channels[4:5], data=event_of(message), idempotency_key=f"chat-activity-{message.pk}-2"),
    ]


def test_one_broadcast_for_a_small_room(settings, fake_cent, crowd, django_capture_on_commit_callbacks):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    settings.CHAT_OUTBOX = False
    settings.CHAT_PERSONAL_NAMESPACE = "inbox"
    room, author, wanted = crowd
    with django_capture_on_commit_callbacks(execute=True):
        activity.announce_activity(Message.objects.create(room=room, user=author, text="hi"))
    (request,) = cent_requests(fake_cent)
    assert request.channels == [f"inbox:#{u.pk}" for u in wanted]


def test_outbox_rows_in_batches(settings, fake_cent, crowd, django_capture_on_commit_callbacks):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    settings.CHAT_OUTBOX = True
    settings.CHAT_OUTBOX_PARTITIONS = 4
    settings.CHAT_ACTIVITY_BATCH_SIZE = 2
    room, author, wanted = crowd
    message = Message.objects.create(room=room, user=author, text="hi")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        activity.announce_activity(message)
    assert callbacks == []  # the rows are the whole announcement: no live send after the commit
    rows = list(Outbox.objects.order_by("id"))
    assert [row.method for row in rows] == ["broadcast"] * 3
    assert {row.partition for row in rows} == {activity.outbox.partition_for("rooms:ops", 4)}
    channels = [f"personal:#{u.pk}" for u in wanted]
    assert [row.payload for row in rows] == [
        {"channels": channels[2 * i:2 * i + 2], "data": event_of(message),
         "idempotency_key": f"chat-activity-{message.pk}-{i}"} for i in range(3)]
    assert cent_requests(fake_cent) == []  # the outbox replaces the API call


def test_channels_group_per_recipient(settings, realtime_settings, crowd, django_capture_on_commit_callbacks):
    """Every member listens on their user.<pk> group: the admitted ones but the author get the
    event, the author and the refused members nothing; nobody gets anything before the commit."""
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
    with django_capture_on_commit_callbacks() as callbacks:
        assert activity.announce_activity(message) == [u.pk for u in wanted]
    before_commit = {pk: async_to_sync(received)(channel) for pk, channel in channels.items()}
    assert set(before_commit.values()) == {None}
    (commit,) = callbacks
    commit()
    got = {pk: async_to_sync(received)(channel) for pk, channel in channels.items()}
    wanted_pks = {u.pk for u in wanted}
    assert {pk: event for pk, event in got.items() if event is not None} == {
        pk: {"type": "user.notify", "data": event_of(message)} for pk in wanted_pks}


def test_nobody_to_tell_no_call(settings, fake_cent, user, lobby):
    settings.CHAT_OUTBOX = False
    Membership.objects.create(room=lobby, user=user)
    assert activity.announce_activity(Message.objects.create(room=lobby, user=user, text="alone")) == []
    assert cent_requests(fake_cent) == []


def test_failures_are_logged_not_raised(settings, crowd, caplog, django_capture_on_commit_callbacks):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    settings.CHAT_OUTBOX = False
    settings.CENTRIFUGO_HTTP_API_URL = ""
    room, author, wanted = crowd
    message = Message.objects.create(room=room, user=author, text="hi")
    with django_capture_on_commit_callbacks(execute=True):
        assert activity.announce_activity(message) == [u.pk for u in wanted]
    assert "not announced" in caplog.text


def test_channel_layer_failure_logged_not_raised(settings, realtime_settings, crowd, monkeypatch, caplog,
                                                 django_capture_on_commit_callbacks):
    settings.CHAT_REALTIME_BACKEND = "channels"

    async def boom(group, event):
        raise RuntimeError("layer down")

    monkeypatch.setattr(get_channel_layer(), "group_send", boom)
    room, author, wanted = crowd
    with django_capture_on_commit_callbacks(execute=True):
        assert activity.announce_activity(Message.objects.create(room=room, user=author, text="hi")) == [
            u.pk for u in wanted]
    assert "channel layer send to user." in caplog.text and "not announced (fully) on channels" in caplog.text


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


# --- what runs where: recipients and outbox rows in the transaction, live sends after it ------


def test_live_sends_wait_for_the_commit(settings, fake_cent, crowd, django_capture_on_commit_callbacks):
    settings.CHAT_REALTIME_BACKEND = "both"
    settings.CHAT_OUTBOX = False
    room, author, wanted = crowd
    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            activity.announce_activity(Message.objects.create(room=room, user=author, text="hi"))
        assert cent_requests(fake_cent) == []  # committed savepoint, outer transaction still open
    assert len(callbacks) == 1 and cent_requests(fake_cent) == []
    callbacks[0]()
    (request,) = cent_requests(fake_cent)
    assert request.channels == [f"personal:#{u.pk}" for u in wanted]


def test_nothing_sent_when_the_message_rolls_back(settings, fake_cent, crowd, django_capture_on_commit_callbacks):
    settings.CHAT_REALTIME_BACKEND = "both"
    settings.CHAT_OUTBOX = False
    room, author, _ = crowd
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            activity.announce_activity(Message.objects.create(room=room, user=author, text="gone"))
            1 / 0
    assert callbacks == [] and cent_requests(fake_cent) == [] and not Message.objects.exists()


def test_start_runs_in_a_daemon_thread_without_waiting():
    """The real _start returns while the work is still running, in a daemon thread; an exception
    of the work is logged by the thread, never raised to the caller."""
    release, done = threading.Event(), threading.Event()
    seen = []

    def work(label):
        seen.append((label, threading.current_thread().name, threading.current_thread().daemon))
        release.wait(5)
        done.set()

    REAL_START(work, "x")
    assert not done.is_set()  # _start returned before the work finished
    release.set()
    assert done.wait(5)
    assert seen == [("x", "chat-activity", True)]


def test_thread_exception_is_logged(caplog):
    def broken():
        raise RuntimeError("boom")

    activity._run_logged(broken)
    assert "background send failed" in caplog.text


class SlowCentClient:
    """A cent client whose broadcast blocks until ``release`` is set (a slow Centrifugo API)."""

    release = threading.Event()
    requests: list = []

    def __init__(self, *args, **kwargs):
        pass

    def broadcast(self, request):
        from cent import BroadcastResult

        assert SlowCentClient.release.wait(5)
        SlowCentClient.requests.append(request)
        return BroadcastResult.model_validate({"responses": [{"result": {}} for _ in request.channels]})


@pytest.fixture
def slow_cent(settings, monkeypatch):
    """Centrifugo backend without outbox, a blocking broadcast, and the real background thread."""
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    settings.CHAT_OUTBOX = False
    settings.CENTRIFUGO_HTTP_API_URL = "http://centrifugo.test:9000/api"
    SlowCentClient.release = threading.Event()
    SlowCentClient.requests = []
    monkeypatch.setattr("chat.centrifugo.Client", SlowCentClient)
    monkeypatch.setattr("chat.activity._start", REAL_START)
    monkeypatch.setattr("chat.realtime.publish", lambda *args, **kwargs: None)
    yield SlowCentClient
    SlowCentClient.release.set()


def wait_for_activity_threads() -> None:
    for thread in threading.enumerate():
        if thread.name == "chat-activity":
            thread.join(5)


@pytest.fixture
def open_room(transactional_db, staff_user):
    """A ``users`` room with the staff user as a member, in a database without an outer test
    transaction: as in production (autocommit), on_commit callbacks run when the view's
    ``transaction.atomic()`` block ends, inside the request."""
    room = Room.objects.get_or_create(name="open")[0]
    Membership.objects.create(room=room, user=staff_user)
    return room


def test_publish_proxy_answers_before_a_slow_broadcast(slow_cent, client, user, staff_user, open_room):
    """The proxy's answer (inside Centrifugo's 1 s proxy timeout) does not wait for the API
    broadcast: it comes while the broadcast is still blocked; the broadcast follows."""
    body = {"client": "c", "transport": "websocket", "protocol": "json", "encoding": "json",
            "user": str(user.pk), "channel": "rooms:open", "data": {"text": "hi"}}
    answer = client.post("/centrifugo/publish/", data=json.dumps(body), content_type="application/json").json()
    assert answer["result"]["data"]["text"] == "hi" and slow_cent.requests == []
    slow_cent.release.set()
    wait_for_activity_threads()
    assert [r.channels for r in slow_cent.requests] == [[f"personal:#{staff_user.pk}"]]


def test_post_view_answers_before_a_slow_broadcast(slow_cent, client, user, staff_user, open_room):
    client.force_login(user)
    response = client.post("/rooms/open/messages/", {"text": "hi"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 201 and slow_cent.requests == []
    slow_cent.release.set()
    wait_for_activity_threads()
    assert [r.channels for r in slow_cent.requests] == [[f"personal:#{staff_user.pk}"]]


# --- every path that saves a message announces it -------------------------------------------


@pytest.fixture
def announced(monkeypatch):
    calls = []
    real = activity.announce_activity
    monkeypatch.setattr("chat.activity.announce_activity", lambda message: calls.append(message) or real(message))
    return calls


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_post_view_announces(settings, fake_cent, user_client, user, staff_user, lobby, announced, accept,
                             django_capture_on_commit_callbacks):
    settings.CHAT_OUTBOX = False
    Membership.objects.create(room=lobby, user=staff_user)
    with django_capture_on_commit_callbacks(execute=True):
        user_client.post("/rooms/lobby/messages/", {"text": "hi"}, HTTP_ACCEPT=accept)
    message = Message.objects.get()
    assert announced == [message]
    broadcasts = [r for r in cent_requests(fake_cent) if isinstance(r, BroadcastRequest)]
    assert [(r.channels, r.data) for r in broadcasts] == [([f"personal:#{staff_user.pk}"], event_of(message))]


def test_publish_proxy_announces(settings, fake_cent, client, user, staff_user, lobby, announced,
                                 django_capture_on_commit_callbacks):
    settings.CHAT_OUTBOX = False
    Membership.objects.create(room=lobby, user=staff_user)
    body = {"client": "c", "transport": "websocket", "protocol": "json", "encoding": "json",
            "user": str(user.pk), "channel": "rooms:lobby", "data": {"text": "hi"}}
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post("/centrifugo/publish/", data=json.dumps(body), content_type="application/json").json()
    message = Message.objects.get()
    assert answer["result"]["data"] == message.as_dict() and announced == [message]
    (request,) = cent_requests(fake_cent)
    assert request.channels == [f"personal:#{staff_user.pk}"]


def test_post_view_activity_failure_keeps_the_message(settings, user_client, staff_user, lobby, caplog,
                                                     django_capture_on_commit_callbacks):
    settings.CHAT_OUTBOX = False
    settings.CENTRIFUGO_HTTP_API_URL = ""
    Membership.objects.create(room=lobby, user=staff_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = user_client.post("/rooms/lobby/messages/", {"text": "kept"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 201 and Message.objects.get().text == "kept"
    assert "not announced" in caplog.text
