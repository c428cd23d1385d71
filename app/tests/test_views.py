import json
import re
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.urls import reverse
from django.utils import timezone

from chat.models import Message, Room


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/rooms/lobby/", "/rooms/join/?name=x"])
def test_anonymous_redirected_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.django_db
def test_login_page_and_login(client, user):
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "alice", "password": "correct-horse-battery-staple"})
    assert response.status_code == 302 and response["Location"] == "/"


@pytest.mark.django_db
def test_logout_by_post(user_client):
    assert user_client.get("/accounts/logout/").status_code == 405
    assert user_client.post("/accounts/logout/").status_code == 302
    assert user_client.get("/").status_code == 302


@pytest.mark.django_db
def test_index_lists_only_allowed_rooms(user_client):
    response = user_client.get("/")
    assert response.status_code == 200
    assert [r.name for r in response.context["rooms"]] == ["lobby"]
    assert b'href="/rooms/staff/"' not in response.content


@pytest.mark.django_db
def test_index_staff_sees_staff_room(staff_client):
    response = staff_client.get("/")
    assert [r.name for r in response.context["rooms"]] == ["lobby", "staff"]


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_join_existing(user_client, method):
    response = getattr(user_client, method)("/rooms/join/", {"name": "lobby"})
    assert response.status_code == 302 and response["Location"] == "/rooms/lobby/"


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_join_creates_public_room(user_client, method):
    response = getattr(user_client, method)("/rooms/join/", {"name": " New-Room "})
    assert response.status_code == 302 and response["Location"] == "/rooms/new-room/"
    room = Room.objects.get(name="new-room")
    assert room.access == "users"


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("name", ["bad name!", "", "a:b", "x" * 65, "join"])
def test_join_invalid_name(user_client, name, method):
    before = Room.objects.count()
    response = getattr(user_client, method)("/rooms/join/", {"name": name})
    assert response.status_code == 200
    assert response.context["join_form"].errors
    assert b'id="join-errors"' in response.content
    assert Room.objects.count() == before


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_join_staff_room_forbidden_for_non_staff(user_client, method):
    assert getattr(user_client, method)("/rooms/join/", {"name": "staff"}).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_join_staff_room_for_staff(staff_client, method):
    assert getattr(staff_client, method)("/rooms/join/", {"name": "staff"})["Location"] == "/rooms/staff/"


@pytest.mark.django_db
def test_index_join_form_posts_with_csrf_token(user_client):
    content = user_client.get("/").content.decode()
    form = re.search(r'<form method="post" action="/rooms/join/" id="join-form".*?</form>', content, re.S)
    assert form is not None
    for marker in ['name="csrfmiddlewaretoken"', 'id="id_name"', 'name="name"', 'id="join-submit"']:
        assert marker in form.group(0), marker


@pytest.mark.django_db
def test_room_page(user_client, user, lobby):
    response = user_client.get("/rooms/lobby/")
    assert response.status_code == 200
    content = response.content.decode()
    for marker in ['id="messages"', 'id="chat-input"', 'id="chat-send"', 'id="chat-status"',
                   'id="chat-config"', "chat/vendor/centrifuge.js", "chat/chat.js",
                   "chat/centrifugo-client.js", "chat/timefmt.js", "chat/notices.js", "chat/readmark.js",
                   'id="live-transport"', 'id="notices"', 'id="room-access"', 'id="membership-form"']:
        assert marker in content
    assert content.index("chat/vendor/centrifuge.js") < content.index("chat/centrifugo-client.js") < content.index("chat/chat.js")
    assert response.context["chat_config"] == {
        "channel": "rooms:lobby", "websocketPath": "/connection/websocket",
        "channelsPath": "/ws/chat/lobby/", "backend": "centrifugo", "transport": "centrifugo",
        "clientAuth": "proxy", "needsSubscriptionToken": False, "tokenUrl": "/chat/token/",
        "subscriptionTokenUrl": "/chat/token/subscription/",
        "presenceUrl": "/rooms/lobby/presence/", "messagesUrl": "/rooms/lobby/messages/",
        "readUrl": "/rooms/lobby/read/",
        "presenceTtl": 60,
        "username": "alice", "maxLength": 1000,
        "transports": [
            {"transport": "websocket", "endpoint": "/connection/websocket"},
            {"transport": "http_stream", "endpoint": "/connection/http_stream"},
            {"transport": "sse", "endpoint": "/connection/sse"},
        ],
        "emulationEndpoint": "/emulation",
        "personalChannel": f"personal:#{user.pk}",
        "notificationsPath": "/ws/user/",
    }
    assert '<ul id="presence" class="presence-list" aria-live="polite"></ul>' in content
    assert 'data-transport="centrifugo"' in content


def _page_config(response) -> dict:
    """The JSON chat.js reads: the json_script element in the rendered page."""
    match = re.search(r'<script id="chat-config" type="application/json">(.*?)</script>',
                      response.content.decode(), re.S)
    assert match, "chat-config json_script missing"
    return json.loads(match.group(1))


def _status_transport(response) -> str:
    match = re.search(r'<p id="chat-status"[^>]*\bdata-transport="([a-z]+)"', response.content.decode())
    assert match, "#chat-status has no data-transport"
    return match.group(1)


@pytest.mark.django_db
@pytest.mark.parametrize("backend, query, transport", [
    ("centrifugo", "", "centrifugo"),
    ("centrifugo", "?transport=channels", "centrifugo"),  # only honoured with "both"
    ("channels", "", "channels"),
    ("channels", "?transport=centrifugo", "channels"),
    ("both", "", "centrifugo"),
    ("both", "?transport=channels", "channels"),
    ("both", "?transport=centrifugo", "centrifugo"),
    ("both", "?transport=bogus", "centrifugo"),
])
def test_room_page_transport_per_backend(user_client, lobby, settings, backend, query, transport):
    settings.CHAT_REALTIME_BACKEND = backend
    response = user_client.get("/rooms/lobby/" + query)
    config = _page_config(response)
    assert (config["backend"], config["transport"]) == (backend, transport)
    assert config["channelsPath"] == "/ws/chat/lobby/"
    assert _status_transport(response) == transport


@pytest.mark.django_db
@pytest.mark.parametrize("auth", ["proxy", "jwt"])
def test_room_page_client_auth(user_client, lobby, settings, auth):
    settings.CHAT_CENTRIFUGO_CLIENT_AUTH = auth
    config = _page_config(user_client.get("/rooms/lobby/"))
    assert config["clientAuth"] == auth
    assert (config["tokenUrl"], config["subscriptionTokenUrl"]) == (
        "/chat/token/", "/chat/token/subscription/")


@pytest.mark.django_db
def test_room_page_staff_room_config(staff_client, staff_room, settings):
    settings.CHAT_CENTRIFUGO_CLIENT_AUTH = "jwt"
    settings.CHAT_PRESENCE_TTL = 30
    config = _page_config(staff_client.get("/rooms/staff/"))
    assert config["needsSubscriptionToken"] is True and config["channel"] == "rooms:staff"
    assert config["presenceUrl"] == "/rooms/staff/presence/" and config["presenceTtl"] == 30
    assert config["channelsPath"] == "/ws/chat/staff/"


@pytest.mark.django_db
def test_room_page_form_keeps_channels_transport(user_client, lobby, settings, monkeypatch):
    """With "both" and ?transport=channels the no-JS form posts and redirects back to the
    Channels page; otherwise the plain URLs are used."""
    monkeypatch.setattr("chat.realtime.publish", lambda *args, **kwargs: None)
    settings.CHAT_REALTIME_BACKEND = "both"
    content = user_client.get("/rooms/lobby/?transport=channels").content.decode()
    assert 'action="/rooms/lobby/messages/?transport=channels"' in content
    response = user_client.post("/rooms/lobby/messages/?transport=channels", {"text": "hi"})
    assert response["Location"] == "/rooms/lobby/?transport=channels"
    invalid = user_client.post("/rooms/lobby/messages/?transport=channels", {"text": " "})
    assert invalid.status_code == 400 and _page_config(invalid)["transport"] == "channels"
    settings.CHAT_REALTIME_BACKEND = "channels"
    page = user_client.get("/rooms/lobby/?transport=channels").content.decode()
    assert 'action="/rooms/lobby/messages/"' in page
    response = user_client.post("/rooms/lobby/messages/?transport=channels", {"text": "hi"})
    assert response["Location"] == "/rooms/lobby/"


@pytest.mark.django_db
def test_room_page_history_last_50_oldest_first(user_client, user, lobby):
    base = timezone.now() - timedelta(hours=1)
    for i in range(60):
        Message.objects.create(room=lobby, user=user, text=f"msg {i}", created_at=base + timedelta(seconds=i))
    response = user_client.get("/rooms/lobby/")
    history = response.context["history"]
    assert [m.text for m in history] == [f"msg {i}" for i in range(10, 60)]
    content = response.content.decode()
    assert content.count('<li class="message"') == 50
    assert ">msg 9<" not in content
    assert content.index(">msg 10<") < content.index(">msg 59<")


@pytest.mark.django_db
def test_room_history_size_setting(user_client, user, lobby, settings):
    settings.CHAT_HISTORY_SIZE = 3
    for i in range(5):
        Message.objects.create(room=lobby, user=user, text=f"m{i}")
    assert [m.text for m in user_client.get("/rooms/lobby/").context["history"]] == ["m2", "m3", "m4"]


@pytest.mark.django_db
def test_room_page_escapes_text(user_client, user, lobby):
    Message.objects.create(room=lobby, user=user, text="<script>alert(1)</script>")
    content = user_client.get("/rooms/lobby/").content.decode()
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;" in content


@pytest.mark.django_db
def test_room_staff_room_forbidden(user_client):
    assert user_client.get("/rooms/staff/").status_code == 403


@pytest.mark.django_db
def test_room_staff_room_allowed_for_staff(staff_client):
    assert staff_client.get("/rooms/staff/").status_code == 200


@pytest.mark.django_db
def test_room_unknown_404(user_client):
    assert user_client.get("/rooms/nope/").status_code == 404


@pytest.mark.django_db
def test_post_message_fallback_saves_and_broadcasts(user_client, lobby, monkeypatch):
    sent = []
    monkeypatch.setattr("chat.centrifugo.publish", lambda channel, data, **kw: sent.append((channel, data)) or True)
    response = user_client.post("/rooms/lobby/messages/", {"text": "  hello  "})
    assert response.status_code == 302 and response["Location"] == "/rooms/lobby/"
    message = Message.objects.get()
    assert message.text == "hello"
    assert sent == [("rooms:lobby", message.as_dict())]


@pytest.mark.django_db
def test_post_message_fallback_rejects(user_client, settings):
    settings.CHAT_MESSAGE_MAX_LENGTH = 5
    assert user_client.post("/rooms/lobby/messages/", {"text": "   "}).status_code == 400
    assert user_client.post("/rooms/lobby/messages/", {"text": "too long"}).status_code == 400
    assert user_client.post("/rooms/staff/messages/", {"text": "hi"}).status_code == 403
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_centrifugo_publish_disabled_without_api_url(settings):
    from chat import centrifugo

    settings.CENTRIFUGO_HTTP_API_URL = ""
    assert centrifugo.get_client() is None
    assert centrifugo.publish("rooms:lobby", {"text": "x"}) is False


@pytest.mark.django_db
def test_centrifugo_publish_api_error_is_logged_not_raised(settings):
    from chat import centrifugo

    settings.CENTRIFUGO_HTTP_API_URL = "http://127.0.0.1:9/api"  # nothing listens on the discard port
    settings.CENTRIFUGO_HTTP_API_KEY = "k"
    assert centrifugo.publish("rooms:lobby", {"text": "x"}) is False


@pytest.mark.django_db
def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.django_db
def test_healthz_db_down(client, monkeypatch):
    from django.db import connection

    def broken_cursor(*args, **kwargs):
        raise DatabaseError("down")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    assert client.get("/healthz").status_code == 503
