"""chat.realtime.notify_user on each backend and the ``notify_user`` management command. The
Channels sockets that receive it (/ws/user/ and the room socket) are tested in
test_consumers.py."""
from __future__ import annotations

import asyncio
from io import StringIO

import pytest
from asgiref.sync import async_to_sync
from cent import PublishRequest
from channels.layers import get_channel_layer
from django.core.management import CommandError, call_command

from chat import realtime
from chat.models import Outbox
from tests.conftest import cent_requests

pytestmark = pytest.mark.django_db

NOTICE = {"type": "notice", "text": "maintenance at 18:00"}


@pytest.fixture
def inbox(realtime_settings, user):
    """A channel-layer channel in ``user``'s group, as a consumer of theirs would be; returns
    ``receive()`` -> the next event or None within 0.2 s."""
    layer = get_channel_layer()

    async def make() -> str:
        channel = await layer.new_channel()
        await layer.group_add(realtime.user_group(user), channel)
        return channel

    channel = async_to_sync(make)()

    async def receive():
        try:
            return await asyncio.wait_for(layer.receive(channel), 0.2)
        except asyncio.TimeoutError:
            return None

    return async_to_sync(receive)


def test_addresses(settings, user):
    assert realtime.user_group(user) == f"user.{user.pk}" == realtime.user_group(user.pk)
    assert realtime.personal_channel(user) == f"personal:#{user.pk}"
    settings.CHAT_PERSONAL_NAMESPACE = "inbox"
    assert realtime.personal_channel(7) == "inbox:#7"
    with pytest.raises(TypeError):
        realtime.personal_channel("7")


def test_centrifugo_api(settings, fake_cent, user):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    settings.CHAT_OUTBOX = False
    realtime.notify_user(user, NOTICE)
    (request,) = cent_requests(fake_cent)
    assert isinstance(request, PublishRequest)
    assert (request.channel, request.data) == (f"personal:#{user.pk}", NOTICE)
    assert request.idempotency_key.startswith("chat-notify-")


def test_centrifugo_outbox(settings, fake_cent, user):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    settings.CHAT_OUTBOX = True
    realtime.notify_user(user, NOTICE)
    (row,) = Outbox.objects.all()
    assert row.method == "publish"
    assert row.payload["channel"] == f"personal:#{user.pk}" and row.payload["data"] == NOTICE
    assert row.payload["idempotency_key"].startswith("chat-notify-")
    assert cent_requests(fake_cent) == []


def test_channels_group(settings, inbox, user):
    settings.CHAT_REALTIME_BACKEND = "channels"
    realtime.notify_user(user, NOTICE)
    assert inbox() == {"type": "user.notify", "data": NOTICE}


def test_both_and_backends_subset(settings, fake_cent, inbox, user):
    settings.CHAT_REALTIME_BACKEND = "both"
    settings.CHAT_OUTBOX = False
    realtime.notify_user(user, NOTICE)
    assert inbox() == {"type": "user.notify", "data": NOTICE}
    assert len(cent_requests(fake_cent)) == 1
    realtime.notify_user(user, NOTICE, backends=["channels"])
    assert inbox() is not None and len(cent_requests(fake_cent)) == 1


def test_another_users_group_gets_nothing(settings, inbox, staff_user):
    settings.CHAT_REALTIME_BACKEND = "channels"
    realtime.notify_user(staff_user, NOTICE)
    assert inbox() is None


def test_failure_raises_realtime_error(settings, user):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    settings.CHAT_OUTBOX = False
    settings.CENTRIFUGO_HTTP_API_URL = ""
    with pytest.raises(realtime.RealtimeError, match="centrifugo"):
        realtime.notify_user(user, NOTICE)


def test_room_refusal_sends_nothing(settings, fake_cent, inbox, user, staff_room):
    settings.CHAT_REALTIME_BACKEND = "both"
    with pytest.raises(realtime.NotAllowed) as refused:
        realtime.notify_user(user, NOTICE, room=staff_room)
    assert isinstance(refused.value, PermissionError)
    assert cent_requests(fake_cent) == [] and inbox() is None


def test_invalid_backends(settings, user):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    with pytest.raises(ValueError):
        realtime.notify_user(user, NOTICE, backends=["channels"])


# --- the management command ------------------------------------------------------------------


def run(*args: str) -> str:
    out = StringIO()
    call_command("notify_user", *args, stdout=out)
    return out.getvalue().strip()


def test_command_text(settings, fake_cent, user):
    settings.CHAT_OUTBOX = False
    assert run("alice", "--text", "maintenance at 18:00") == "sent"
    assert [(r.channel, r.data) for r in cent_requests(fake_cent)] == [(f"personal:#{user.pk}", NOTICE)]


def test_command_data(settings, inbox, user):
    settings.CHAT_REALTIME_BACKEND = "channels"
    assert run("alice", "--data", '{"type": "custom", "n": 1}') == "sent"
    assert inbox() == {"type": "user.notify", "data": {"type": "custom", "n": 1}}


@pytest.mark.parametrize("args, match", [
    (("nobody", "--text", "x"), "unknown user 'nobody'"),
    (("alice", "--data", "not json"), "not valid JSON"),
    (("alice", "--data", "[1]"), "JSON object"),
    (("alice",), "one of the arguments --text --data is required"),
    (("alice", "--text", "x", "--data", "{}"), "not allowed with"),
])
def test_command_errors(fake_cent, user, args, match):
    with pytest.raises(CommandError, match=match):
        run(*args)
    assert cent_requests(fake_cent) == []


def test_command_failed_send(settings, user):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    settings.CHAT_OUTBOX = False
    settings.CENTRIFUGO_HTTP_API_URL = ""
    with pytest.raises(CommandError, match="notification to alice failed"):
        run("alice", "--text", "x")
