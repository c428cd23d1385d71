"""chat.realtime.publish on each backend (also restricted with ``backends=``), relay, and the
``publish`` management command."""
from __future__ import annotations

import asyncio
from io import StringIO
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.management import CommandError, call_command

from chat import realtime
from tests.conftest import cent_requests

DATA = {"id": 1, "room": "lobby", "user": "alice", "text": "hi", "created_at": "2026-01-01T00:00:00+00:00"}


@pytest.fixture
def listener(realtime_settings):
    """``(layer, channel)``: a channel-layer channel subscribed to the lobby group, as a
    ChatConsumer would be. Made in its own event loop (the in-memory layer binds a channel's
    queue to a loop only when it is first read or written), so sync and async tests share it."""
    from asgiref.sync import async_to_sync

    layer = get_channel_layer()

    async def make() -> str:
        channel = await layer.new_channel()
        await layer.group_add(realtime.group_for("lobby"), channel)
        return channel

    return layer, async_to_sync(make)()


def test_group_for():
    assert realtime.group_for("lobby") == "chat_room.lobby"


def test_centrifugo_backend_calls_cent(settings, fake_cent, realtime_settings):
    from cent import PublishRequest

    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    realtime.publish("rooms:lobby", DATA)
    (client,) = fake_cent.instances
    assert (client.api_url, client.api_key) == ("http://centrifugo.test:9000/api", "api-key")
    assert cent_requests(fake_cent) == [PublishRequest(channel="rooms:lobby", data=DATA,
                                                       idempotency_key="chat-rooms:lobby-1")]


def test_centrifugo_backend_unconfigured_raises(settings, realtime_settings):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    settings.CENTRIFUGO_HTTP_API_URL = ""
    with pytest.raises(realtime.RealtimeError, match="centrifugo"):
        realtime.publish("rooms:lobby", DATA)


@pytest.mark.asyncio
@pytest.mark.parametrize("backend, call, cent_channels", [
    ("channels", lambda: realtime.publish("rooms:lobby", DATA), []),
    ("both", lambda: realtime.publish("rooms:lobby", DATA), ["rooms:lobby"]),
    # publish() restricted to the channel layer although both backends are enabled.
    ("both", lambda: realtime.publish("rooms:lobby", DATA, backends=("channels",)), []),
], ids=["channels", "both", "both-backends-channels"])
async def test_channel_layer_receives(settings, listener, fake_cent, backend, call, cent_channels):
    settings.CHAT_REALTIME_BACKEND = backend
    layer, channel = listener
    await sync_to_async(call)()
    assert await layer.receive(channel) == {"type": "chat.message", "message": DATA}
    assert [r.channel for r in cent_requests(fake_cent)] == cent_channels


@pytest.mark.parametrize("backend, expected", [
    ("centrifugo", ("centrifugo",)), ("channels", ("channels",)), ("both", ("centrifugo", "channels")),
])
def test_enabled_backends(settings, backend, expected):
    settings.CHAT_REALTIME_BACKEND = backend
    assert realtime.enabled_backends() == expected


async def assert_no_group_message(layer, channel: str) -> None:
    """Nothing reaches ``channel`` on the channel layer within 0.2 s."""
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.2)


@pytest.mark.parametrize("backend, backends, error", [
    ("centrifugo", ("channels",), ValueError),      # not enabled
    ("channels", ("centrifugo", "channels"), ValueError),
    ("both", ("redis",), ValueError),              # unknown name
    ("both", (), ValueError),                      # empty
    ("both", "centrifugo", TypeError),             # a string, not a collection
])
def test_backends_invalid(settings, realtime_settings, fake_cent, backend, backends, error):
    settings.CHAT_REALTIME_BACKEND = backend
    with pytest.raises(error):
        realtime.publish("rooms:lobby", DATA, backends=backends)
    assert cent_requests(fake_cent) == []


def test_backends_subset_failure_raises(settings, realtime_settings):
    settings.CHAT_REALTIME_BACKEND = "both"
    settings.CENTRIFUGO_HTTP_API_URL = ""
    with pytest.raises(realtime.RealtimeError, match="centrifugo"):
        realtime.publish("rooms:lobby", DATA, backends=["centrifugo"])


@pytest.mark.asyncio
@pytest.mark.parametrize("backend", ["centrifugo", "channels"])
async def test_relay_noop_unless_both(settings, listener, fake_cent, backend):
    settings.CHAT_REALTIME_BACKEND = backend
    layer, channel = listener
    for source in ("centrifugo", "channels"):
        await sync_to_async(realtime.relay)("rooms:lobby", DATA, source=source)
    assert cent_requests(fake_cent) == []
    await assert_no_group_message(layer, channel)


@pytest.mark.asyncio
@pytest.mark.parametrize("call", [
    # publish() restricted to one backend...
    lambda: realtime.publish("rooms:lobby", DATA, backends=["centrifugo"]),
    # ...and the relay of a message that came from Channels: only Centrifugo gets it.
    lambda: realtime.relay("rooms:lobby", DATA, source="channels"),
], ids=["publish-backends-centrifugo", "relay-from-channels"])
async def test_only_centrifugo_receives(settings, listener, fake_cent, call):
    settings.CHAT_REALTIME_BACKEND = "both"
    layer, channel = listener
    await sync_to_async(call)()
    assert [(r.channel, r.data) for r in cent_requests(fake_cent)] == [("rooms:lobby", DATA)]
    await assert_no_group_message(layer, channel)



def test_relay_failure_logged_not_raised(settings, realtime_settings, caplog):
    settings.CHAT_REALTIME_BACKEND = "both"
    settings.CENTRIFUGO_HTTP_API_URL = ""
    realtime.relay("rooms:lobby", DATA, source="channels")
    assert "not relayed to centrifugo" in caplog.text


def test_relay_unknown_source(settings, realtime_settings):
    settings.CHAT_REALTIME_BACKEND = "both"
    with pytest.raises(ValueError, match="source"):
        realtime.relay("rooms:lobby", DATA, source="redis")


def test_malformed_channel_rejected(realtime_settings):
    with pytest.raises(ValueError):
        realtime.publish("lobby", DATA)


def test_channel_layer_failure_raises(settings, realtime_settings, monkeypatch):
    settings.CHAT_REALTIME_BACKEND = "channels"

    async def boom(*args: Any) -> None:
        raise ConnectionError("redis down")

    monkeypatch.setattr(get_channel_layer(), "group_send", boom)
    with pytest.raises(realtime.RealtimeError, match="channels"):
        realtime.publish("rooms:lobby", DATA)


def test_publish_command(settings, fake_cent, realtime_settings):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    out = StringIO()
    call_command("publish", "rooms:lobby", '{"text": "maintenance"}', stdout=out)
    assert out.getvalue().strip() == "published"
    sent = [(r.channel, r.data) for r in cent_requests(fake_cent)]
    assert sent == [("rooms:lobby", {"text": "maintenance"})]


@pytest.mark.parametrize(
    "channel, data, match",
    [("rooms:lobby", "not json", "valid JSON"), ("rooms:lobby", "[1]", "object"),
     ("lobby", "{}", "rooms:<name>")],
)
def test_publish_command_errors(realtime_settings, fake_cent, channel, data, match):
    with pytest.raises(CommandError, match=match):
        call_command("publish", channel, data)


def test_publish_command_backend_failure(settings, realtime_settings):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    settings.CENTRIFUGO_HTTP_API_URL = ""
    with pytest.raises(CommandError, match="failed"):
        call_command("publish", "rooms:lobby", "{}")


def test_post_message_fallback_uses_channels(settings, user_client, lobby, listener):
    """The no-JS form fallback broadcasts through realtime.publish."""
    from asgiref.sync import async_to_sync

    settings.CHAT_REALTIME_BACKEND = "channels"
    layer, channel = listener
    response = user_client.post("/rooms/lobby/messages/", {"text": "from form"})
    assert response.status_code == 302
    event = async_to_sync(layer.receive)(channel)
    assert event["message"]["text"] == "from form"


def test_post_message_fallback_survives_publish_failure(settings, user_client, lobby):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    settings.CENTRIFUGO_HTTP_API_URL = ""
    response = user_client.post("/rooms/lobby/messages/", {"text": "saved anyway"})
    assert response.status_code == 302
    assert lobby.messages.get().text == "saved anyway"
