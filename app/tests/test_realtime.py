"""chat.realtime.publish on each backend, and the ``publish`` management command."""
from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.management import CommandError, call_command

from chat import realtime

DATA = {"id": 1, "room": "lobby", "user": "alice", "text": "hi", "created_at": "2026-01-01T00:00:00+00:00"}


class FakeCentClient:
    """Stands in for cent.Client. A monkeypatched client is acceptable only because the real
    Centrifugo HTTP API is exercised end to end in the molecule scenario; here we check that
    the right PublishRequest reaches the client."""

    instances: list["FakeCentClient"] = []

    def __init__(self, api_url: str, api_key: str, **kwargs: Any) -> None:
        self.api_url, self.api_key, self.kwargs = api_url, api_key, kwargs
        self.requests: list[Any] = []
        FakeCentClient.instances.append(self)

    def publish(self, request: Any) -> None:
        self.requests.append(request)


@pytest.fixture
def fake_cent(monkeypatch, settings):
    FakeCentClient.instances = []
    monkeypatch.setattr("chat.centrifugo.Client", FakeCentClient)
    settings.CENTRIFUGO_HTTP_API_URL = "http://centrifugo.test:9000/api"
    settings.CENTRIFUGO_HTTP_API_KEY = "api-key"
    return FakeCentClient


def _sent(fake: type[FakeCentClient]) -> list[Any]:
    return [request for client in fake.instances for request in client.requests]


@pytest.fixture
def listener(realtime_settings):
    """A channel-layer channel subscribed to the lobby group (as a ChatConsumer would be)."""
    layer = get_channel_layer()

    async def make() -> str:
        channel = await layer.new_channel()
        await layer.group_add(realtime.group_for("lobby"), channel)
        return channel

    return layer, make


def test_group_for():
    assert realtime.group_for("lobby") == "chat_room.lobby"


def test_centrifugo_backend_calls_cent(settings, fake_cent, realtime_settings):
    from cent import PublishRequest

    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    realtime.publish("rooms:lobby", DATA)
    (client,) = fake_cent.instances
    assert (client.api_url, client.api_key) == ("http://centrifugo.test:9000/api", "api-key")
    assert _sent(fake_cent) == [PublishRequest(channel="rooms:lobby", data=DATA)]


def test_centrifugo_backend_unconfigured_raises(settings, realtime_settings):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    settings.CENTRIFUGO_HTTP_API_URL = ""
    with pytest.raises(realtime.RealtimeError, match="centrifugo"):
        realtime.publish("rooms:lobby", DATA)


@pytest.mark.asyncio
async def test_channels_backend_reaches_group(settings, listener, fake_cent):
    settings.CHAT_REALTIME_BACKEND = "channels"
    layer, make = listener
    channel = await make()
    await sync_to_async(realtime.publish)("rooms:lobby", DATA)
    assert await layer.receive(channel) == {"type": "chat.message", "message": DATA}
    assert _sent(fake_cent) == []


@pytest.mark.asyncio
async def test_both_backends(settings, listener, fake_cent):
    settings.CHAT_REALTIME_BACKEND = "both"
    layer, make = listener
    channel = await make()
    await sync_to_async(realtime.publish)("rooms:lobby", DATA)
    assert (await layer.receive(channel))["message"] == DATA
    assert [r.channel for r in _sent(fake_cent)] == ["rooms:lobby"]


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
    assert [(r.channel, r.data) for r in _sent(fake_cent)] == [("rooms:lobby", {"text": "maintenance"})]


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
    layer, make = listener
    channel = async_to_sync(make)()
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
