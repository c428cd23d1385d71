"""chat.page_config: the Centrifugo transports the pages hand to centrifuge-js, and the room
page's access-level display."""
from __future__ import annotations

import json
import re

import pytest

from chat import page_config


@pytest.mark.parametrize("path, names, expected", [
    ("/connection/websocket", ["websocket", "http_stream", "sse"],
     ["/connection/websocket", "/connection/http_stream", "/connection/sse"]),
    ("/rt/connection/websocket", ["sse", "websocket"], ["/rt/connection/sse", "/rt/connection/websocket"]),
    ("/ws", ["websocket", "http_stream"], ["/ws", "/http_stream"]),
    ("/connection/websocket/", ["http_stream"], ["/connection/http_stream"]),
])
def test_transports_next_to_the_websocket_path(settings, path, names, expected):
    settings.CHAT_WEBSOCKET_PATH = path
    settings.CHAT_CENTRIFUGO_TRANSPORTS = names
    assert page_config.centrifugo_transports() == [
        {"transport": name, "endpoint": endpoint} for name, endpoint in zip(names, expected)]


@pytest.mark.parametrize("host, expected", [
    ("chat.example.org", "wss://chat.example.org:8443/connection/websocket"),
    ("127.0.0.1:18443", "wss://127.0.0.1:8443/connection/websocket"),
    ("[::1]:443", "wss://[::1]:8443/connection/websocket"),
])
def test_l4_websocket_endpoint_keeps_the_page_host_name(settings, rf, host, expected):
    settings.ALLOWED_HOSTS = ["*"]
    settings.CHAT_CENTRIFUGO_WEBSOCKET_PORT = 8443
    settings.CHAT_CENTRIFUGO_TRANSPORTS = ["websocket", "sse"]
    request = rf.get("/rooms/", HTTP_HOST=host)
    assert page_config.centrifugo_transports(request) == [
        {"transport": "websocket", "endpoint": expected}, {"transport": "sse", "endpoint": "/connection/sse"}]
    settings.CHAT_CENTRIFUGO_WEBSOCKET_PORT = 0
    assert page_config.websocket_endpoint(request) == "/connection/websocket"


@pytest.mark.django_db
def test_room_page_config_follows_settings(settings, user_client, lobby):
    settings.CHAT_CENTRIFUGO_TRANSPORTS = ["sse"]
    settings.CHAT_CENTRIFUGO_EMULATION_PATH = "/rt/emulation"
    content = user_client.get("/rooms/lobby/").content.decode()
    config = json.loads(re.search(r'<script id="chat-config" type="application/json">(.*?)</script>',
                                  content, re.S).group(1))
    assert config["transports"] == [{"transport": "sse", "endpoint": "/connection/sse"}]
    assert config["emulationEndpoint"] == "/rt/emulation"


@pytest.mark.django_db
@pytest.mark.parametrize("level", ["users", "groups", "staff", "superuser"])
def test_room_page_shows_the_access_level(client, level_rooms, level_users, level):
    from chat.access import DESCRIPTIONS

    client.force_login(level_users["superuser"])
    room = level_rooms[level]
    content = client.get(f"/rooms/{room.name}/").content.decode()
    assert re.search(rf'<span id="room-access"[^>]*data-access="{level}"[^>]*>{level}</span>', content)
    help_text = re.search(r'<span id="room-access-help"[^>]*>(.*?)</span>', content, re.S).group(1)
    assert help_text.replace("&#x27;", "'") == DESCRIPTIONS[level]
    config = json.loads(re.search(r'<script id="chat-config" type="application/json">(.*?)</script>',
                                  content, re.S).group(1))
    assert config["needsSubscriptionToken"] is (level != "users")
