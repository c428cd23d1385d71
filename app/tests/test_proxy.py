import pytest

from chat.models import Message

CONNECT = "/centrifugo/connect/"
SUBSCRIBE = "/centrifugo/subscribe/"
PUBLISH = "/centrifugo/publish/"

BASE = {"client": "9336a229-2400-4ebc-8c50-0a643d22e8a0", "transport": "websocket",
        "protocol": "json", "encoding": "json"}


def body(**fields):
    return {**BASE, **fields}


# --- connect ---------------------------------------------------------------

@pytest.mark.django_db
def test_connect_authenticated_via_session_cookie(client, user, proxy_post):
    client.force_login(user)  # Centrifugo forwards the browser's Cookie header
    response = proxy_post(CONNECT, BASE)
    assert response.status_code == 200
    assert response.json() == {"result": {"user": str(user.pk), "info": {"username": "alice"}}}


@pytest.mark.django_db
def test_connect_is_csrf_exempt(user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(CONNECT, data=BASE, content_type="application/json")
    assert response.json()["result"]["user"] == str(user.pk)


@pytest.mark.django_db
def test_connect_anonymous_disconnected(proxy_post):
    response = proxy_post(CONNECT, BASE)
    assert response.status_code == 200
    assert response.json() == {"disconnect": {"code": 4501, "reason": "unauthorized"}}


@pytest.mark.django_db
@pytest.mark.parametrize("path", [CONNECT, SUBSCRIBE, PUBLISH])
def test_proxy_get_not_allowed(client, path):
    assert client.get(path).status_code == 405


# --- subscribe -------------------------------------------------------------

@pytest.mark.django_db
def test_subscribe_ok(user, lobby, proxy_post):
    response = proxy_post(SUBSCRIBE, body(user=str(user.pk), channel="rooms:lobby"))
    assert response.status_code == 200
    assert response.json() == {"result": {}}


@pytest.mark.django_db
def test_subscribe_staff_room_for_staff(staff_user, proxy_post):
    response = proxy_post(SUBSCRIBE, body(user=str(staff_user.pk), channel="rooms:staff"))
    assert response.json() == {"result": {}}


@pytest.mark.django_db
def test_subscribe_unknown_room(user, proxy_post):
    response = proxy_post(SUBSCRIBE, body(user=str(user.pk), channel="rooms:nope"))
    assert response.json() == {"error": {"code": 102, "message": "unknown channel"}}


@pytest.mark.django_db
def test_subscribe_staff_room_denied_for_non_staff(user, proxy_post):
    response = proxy_post(SUBSCRIBE, body(user=str(user.pk), channel="rooms:staff"))
    assert response.json() == {"error": {"code": 103, "message": "permission denied"}}


@pytest.mark.django_db
@pytest.mark.parametrize("channel", ["lobby", "chat:lobby", "rooms:", "rooms:Lobby", "rooms:lob by", None, 42])
def test_subscribe_malformed_channel(user, proxy_post, channel):
    response = proxy_post(SUBSCRIBE, body(user=str(user.pk), channel=channel))
    assert response.json()["error"]["code"] == 102


@pytest.mark.django_db
@pytest.mark.parametrize("user_field", ["", "999999", "abc", None, 5])
def test_subscribe_unknown_or_anonymous_user(proxy_post, lobby, user_field):
    response = proxy_post(SUBSCRIBE, body(user=user_field, channel="rooms:lobby"))
    assert response.json()["error"]["code"] == 103


@pytest.mark.django_db
def test_subscribe_inactive_user(user, proxy_post, lobby):
    user.is_active = False
    user.save()
    response = proxy_post(SUBSCRIBE, body(user=str(user.pk), channel="rooms:lobby"))
    assert response.json()["error"]["code"] == 103


@pytest.mark.django_db
@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b""])
def test_proxy_rejects_non_object_body(client, raw):
    response = client.post(SUBSCRIBE, data=raw, content_type="application/json")
    assert response.status_code == 400


# --- publish ---------------------------------------------------------------

@pytest.mark.django_db
def test_publish_ok_saves_message_and_returns_it(user, lobby, proxy_post):
    response = proxy_post(PUBLISH, body(user=str(user.pk), channel="rooms:lobby", data={"text": "  hello  "}))
    assert response.status_code == 200
    message = Message.objects.get()
    assert (message.room, message.user, message.text) == (lobby, user, "hello")
    data = response.json()["result"]["data"]
    assert data == message.as_dict()
    assert data["user"] == "alice" and data["id"] == message.pk and data["created_at"]


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_publish_empty(user, lobby, proxy_post, text):
    response = proxy_post(PUBLISH, body(user=str(user.pk), channel="rooms:lobby", data={"text": text}))
    assert response.json() == {"error": {"code": 1001, "message": "message is empty"}}
    assert not Message.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("data", [None, "hello", {"msg": "hi"}, {"text": 5}, {"text": None}, [1]])
def test_publish_malformed_data(user, lobby, proxy_post, data):
    response = proxy_post(PUBLISH, body(user=str(user.pk), channel="rooms:lobby", data=data))
    assert response.json()["error"]["code"] == 1000
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_publish_too_long(user, lobby, proxy_post, settings):
    limit = settings.CHAT_MESSAGE_MAX_LENGTH
    assert limit == 1000
    ok = proxy_post(PUBLISH, body(user=str(user.pk), channel="rooms:lobby", data={"text": "x" * limit}))
    assert "result" in ok.json()
    response = proxy_post(PUBLISH, body(user=str(user.pk), channel="rooms:lobby", data={"text": "x" * (limit + 1)}))
    error = response.json()["error"]
    assert error["code"] == 1002 and "too long" in error["message"]
    assert 400 <= error["code"] <= 1999
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_publish_staff_room_refused_for_non_staff(user, proxy_post):
    response = proxy_post(PUBLISH, body(user=str(user.pk), channel="rooms:staff", data={"text": "hi"}))
    assert response.json() == {"error": {"code": 103, "message": "permission denied"}}
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_publish_staff_room_ok_for_staff(staff_user, proxy_post):
    response = proxy_post(PUBLISH, body(user=str(staff_user.pk), channel="rooms:staff", data={"text": "hi"}))
    assert response.json()["result"]["data"]["user"] == "bob"


@pytest.mark.django_db
def test_publish_unknown_room(user, proxy_post):
    response = proxy_post(PUBLISH, body(user=str(user.pk), channel="rooms:nope", data={"text": "hi"}))
    assert response.json() == {"error": {"code": 102, "message": "unknown channel"}}
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_publish_anonymous_user_refused(lobby, proxy_post):
    response = proxy_post(PUBLISH, body(user="", channel="rooms:lobby", data={"text": "hi"}))
    assert response.json()["error"]["code"] == 103


@pytest.mark.django_db
def test_publish_both_channel_layer_failure_still_returns_result(
    user, lobby, proxy_post, settings, realtime_settings, monkeypatch, caplog
):
    """Cross-delivery to the Channels group is best effort: the message is saved and returned
    to Centrifugo even if the channel layer is down."""
    from channels.layers import get_channel_layer

    async def boom(*args, **kwargs):
        raise ConnectionError("redis down")

    settings.CHAT_REALTIME_BACKEND = "both"
    monkeypatch.setattr(get_channel_layer(), "group_send", boom)
    response = proxy_post(PUBLISH, body(user=str(user.pk), channel="rooms:lobby", data={"text": "hi"}))
    assert response.json()["result"]["data"] == Message.objects.get().as_dict()
    assert "not relayed to channels" in caplog.text


@pytest.mark.django_db
def test_publish_both_relays_saved_message_to_group(user, lobby, proxy_post, settings, monkeypatch):
    relayed = []
    monkeypatch.setattr(
        "chat.realtime.publish", lambda channel, data, **kw: relayed.append((channel, data, kw))
    )
    settings.CHAT_REALTIME_BACKEND = "both"
    response = proxy_post(PUBLISH, body(user=str(user.pk), channel="rooms:lobby", data={"text": "hi"}))
    assert relayed == [("rooms:lobby", response.json()["result"]["data"], {"backends": ("channels",)})]
