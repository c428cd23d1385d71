"""Every way into a room admits exactly the users its access level admits (Room.allows), for each
level and each kind of user (tests.conftest.LEVEL_CASES): the Centrifugo subscribe and publish
proxies (103 when refused), subscription tokens, the room page, the history / gap-fill GET, the
message POST, the presence view (403 when refused; an inactive user has no session, so the
login redirect), and notify_user(room=...) (NotAllowed). The Channels consumer's share is in
test_consumers.py."""
from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from chat import realtime
from chat.models import Message
from tests.conftest import LEVEL_CASES, JWT_SECRET, cent_requests

pytestmark = pytest.mark.django_db

BASE = {"client": "c-1", "transport": "websocket", "protocol": "json", "encoding": "json"}


def proxy(path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = Client().post(path, data=json.dumps({**BASE, **body}), content_type="application/json")
    assert response.status_code == 200
    return response.json()


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def expected_status(kind: str, admitted: bool, ok: int) -> int:
    """``ok`` when admitted; an inactive user's session is no session (login redirect); 403."""
    if admitted:
        return ok
    return 302 if kind == "inactive" else 403


@pytest.mark.parametrize("level, kind, admitted", LEVEL_CASES)
def test_subscribe_proxy(level_rooms, level_users, level, kind, admitted):
    body = {"user": str(level_users[kind].pk), "channel": level_rooms[level].channel()}
    answer = proxy("/centrifugo/subscribe/", body)
    assert answer == ({"result": {}} if admitted else {"error": {"code": 103, "message": "permission denied"}})


@pytest.mark.parametrize("level, kind, admitted", LEVEL_CASES)
def test_publish_proxy(level_rooms, level_users, level, kind, admitted):
    room = level_rooms[level]
    answer = proxy("/centrifugo/publish/", {"user": str(level_users[kind].pk), "channel": room.channel(),
                                            "data": {"text": "hi"}})
    if admitted:
        assert answer["result"]["data"] == Message.objects.get(room=room).as_dict()
    else:
        assert answer == {"error": {"code": 103, "message": "permission denied"}}
        assert not Message.objects.filter(room=room).exists()


@pytest.mark.parametrize("level, kind, admitted", LEVEL_CASES)
def test_subscription_token(settings, level_rooms, level_users, level, kind, admitted):
    settings.CHAT_JWT_SECRET = JWT_SECRET
    response = logged_in(level_users[kind]).get(
        "/chat/token/subscription/", {"channel": level_rooms[level].channel()})
    assert response.status_code == expected_status(kind, admitted, 200)
    if admitted:
        assert response.json()["token"]


@pytest.mark.parametrize("level, kind, admitted", LEVEL_CASES)
def test_room_page(level_rooms, level_users, level, kind, admitted):
    response = logged_in(level_users[kind]).get(f"/rooms/{level_rooms[level].name}/")
    assert response.status_code == expected_status(kind, admitted, 200)
    if response.status_code == 403:  # a level-neutral reason on the 403 page
        assert b"You do not have access to this room." in response.content


@pytest.mark.parametrize("level, kind, admitted", LEVEL_CASES)
def test_history_gap_fill(level_rooms, level_users, level, kind, admitted):
    room = level_rooms[level]
    Message.objects.create(room=room, user=level_users["superuser"], text="secret")
    response = logged_in(level_users[kind]).get(f"/rooms/{room.name}/messages/", {"after": 0},
                                                HTTP_ACCEPT="application/json")
    assert response.status_code == expected_status(kind, admitted, 200)
    if admitted:
        assert [m["text"] for m in response.json()["messages"]] == ["secret"]
    else:
        assert b"secret" not in response.content


@pytest.mark.parametrize("level, kind, admitted", LEVEL_CASES)
def test_post_message(level_rooms, level_users, level, kind, admitted, monkeypatch):
    monkeypatch.setattr("chat.realtime.publish", lambda *args, **kwargs: None)
    room = level_rooms[level]
    response = logged_in(level_users[kind]).post(f"/rooms/{room.name}/messages/", {"text": "hi"},
                                                 HTTP_ACCEPT="application/json")
    assert response.status_code == expected_status(kind, admitted, 201)
    assert Message.objects.filter(room=room).exists() is admitted


@pytest.mark.parametrize("level, kind, admitted", LEVEL_CASES)
def test_presence(settings, realtime_settings, level_rooms, level_users, level, kind, admitted):
    settings.CHAT_REALTIME_BACKEND = "channels"
    response = logged_in(level_users[kind]).get(f"/rooms/{level_rooms[level].name}/presence/")
    assert response.status_code == expected_status(kind, admitted, 200)
    if response.status_code == 403:
        assert response.json() == {"error": "permission denied"}


@pytest.mark.parametrize("level, kind, admitted", LEVEL_CASES)
def test_notify_user_with_room(settings, fake_cent, level_rooms, level_users, level, kind, admitted):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    user = level_users[kind]
    if admitted:
        realtime.notify_user(user, {"type": "notice", "text": "x"}, room=level_rooms[level])
        assert [r.channel for r in cent_requests(fake_cent)] == [f"personal:#{user.pk}"]
    else:
        with pytest.raises(realtime.NotAllowed):
            realtime.notify_user(user, {"type": "notice", "text": "x"}, room=level_rooms[level])
        assert cent_requests(fake_cent) == []
