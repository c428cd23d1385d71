"""Room members and unread counts (chat.membership, chat.membership_views): join (the index
page's join box and the room page's button), leave, read marks (room page GET, POST
/rooms/<name>/read/, writing a message) and the index page's "Your rooms" with unread counts."""
from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from chat.models import Membership, Message, Room
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_publish(monkeypatch):
    monkeypatch.setattr("chat.realtime.publish", lambda *args, **kwargs: None)


def member(room, user, last_read_seq: int = 0) -> Membership:
    return Membership.objects.create(room=room, user=user, last_read_seq=last_read_seq)


def post_messages(room, user, count: int) -> list[Message]:
    return [Message.objects.create(room=room, user=user, text=f"m{i}") for i in range(count)]


# --- join ------------------------------------------------------------------------------------


def test_join_box_makes_the_user_a_member(user_client, user, lobby):
    post_messages(lobby, user, 2)
    response = user_client.post("/rooms/join/", {"name": "lobby"})
    assert response.status_code == 302 and response["Location"] == "/rooms/lobby/"
    assert Membership.objects.get(room=lobby, user=user).last_read_seq == 2  # nothing unread yet
    assert user_client.post("/rooms/join/", {"name": "lobby"}).status_code == 302  # again: still one
    assert Membership.objects.filter(room=lobby, user=user).count() == 1


def test_join_box_new_room_member(user_client, user):
    response = user_client.post("/rooms/join/", {"name": " Fresh "})
    assert response.status_code == 302 and response["Location"] == "/rooms/fresh/"
    room = Room.objects.get(name="fresh")
    assert room.access == "users" and list(room.members.all()) == [user]


def test_join_box_refused_room_no_membership(user_client, user, staff_room):
    assert user_client.post("/rooms/join/", {"name": "staff"}).status_code == 403
    assert not Membership.objects.exists()


@pytest.mark.parametrize("name", ["bad name!", "", "join"])
def test_join_box_invalid_name_no_membership(user_client, user, name):
    rooms_before = Room.objects.count()
    response = user_client.post("/rooms/join/", {"name": name})
    assert response.status_code == 200 and b'id="join-errors"' in response.content
    assert Room.objects.count() == rooms_before and not Membership.objects.exists()


def test_join_link_get_changes_no_membership(user_client, user, lobby):
    """GET /rooms/join/?name= (links, bookmarks, or a cross-site <img>) only goes to the room."""
    response = user_client.get("/rooms/join/", {"name": "lobby"})
    assert response.status_code == 302 and response["Location"] == "/rooms/lobby/"
    assert not Membership.objects.exists()
    content = user_client.get(response["Location"]).content.decode()
    assert 'id="join-room"' in content  # the room page offers the Join button


def test_join_link_get_new_room_created_not_joined(user_client, user):
    response = user_client.get("/rooms/join/", {"name": "fresh"})
    assert response["Location"] == "/rooms/fresh/"
    assert Room.objects.get(name="fresh").access == "users" and not Membership.objects.exists()


def test_join_link_get_refused_room_403(user_client, user, staff_room):
    assert user_client.get("/rooms/join/", {"name": "staff"}).status_code == 403
    assert not Membership.objects.exists()


def test_join_box_csrf_protected(user, lobby):
    """Without the CSRF token the POST is refused (403) and changes nothing; with the token from
    the index page's form it joins."""
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post("/rooms/join/", {"name": "lobby"}).status_code == 403
    assert strict.post("/rooms/join/", {"name": "brand-new"}).status_code == 403
    assert not Membership.objects.exists() and not Room.objects.filter(name="brand-new").exists()
    form = re.search(r'<form method="post" action="/rooms/join/" id="join-form".*?</form>',
                     strict.get("/").content.decode(), re.S).group(0)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    response = strict.post("/rooms/join/", {"name": "lobby", "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and lobby.members.filter(pk=user.pk).exists()


def test_join_box_login_required_and_methods(client, user, lobby):
    assert client.post("/rooms/join/", {"name": "lobby"})["Location"].startswith("/accounts/login/")
    client.force_login(user)
    for method in (client.put, client.delete, client.patch):
        assert method("/rooms/join/").status_code == 405
    assert not Membership.objects.exists()


def test_join_button(user_client, user, lobby):
    response = user_client.post("/rooms/lobby/join/")
    assert response.status_code == 302 and response["Location"] == "/rooms/lobby/"
    assert lobby.members.filter(pk=user.pk).exists()
    assert user_client.post("/rooms/lobby/join/").status_code == 302  # again: still one
    assert Membership.objects.filter(room=lobby, user=user).count() == 1


def test_join_button_keeps_channels_transport(settings, user_client, lobby):
    settings.CHAT_REALTIME_BACKEND = "both"
    response = user_client.post("/rooms/lobby/join/?transport=channels")
    assert response["Location"] == "/rooms/lobby/?transport=channels"


@pytest.mark.parametrize("action", ["join", "leave", "read"])
def test_refused_level_403_unknown_room_404(user_client, staff_room, action):
    assert user_client.post(f"/rooms/staff/{action}/", {"seq": "1"}).status_code == 403
    assert user_client.post(f"/rooms/nope/{action}/", {"seq": "1"}).status_code == 404
    assert not Membership.objects.exists()


@pytest.mark.parametrize("action", ["join", "leave", "read"])
def test_post_only_login_required_csrf_protected(client, user, lobby, action):
    path = f"/rooms/lobby/{action}/"
    assert client.post(path)["Location"].startswith("/accounts/login/")
    client.force_login(user)
    assert client.get(path).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(path, {"seq": "1"}).status_code == 403
    assert not Membership.objects.exists()


def test_room_page_membership_form(user_client, user, lobby):
    content = user_client.get("/rooms/lobby/").content.decode()
    assert re.search(r'<form id="membership-form" method="post"[^>]*action="/rooms/lobby/join/"', content)
    assert 'id="join-room"' in content and 'id="leave-room"' not in content
    user_client.post("/rooms/lobby/join/")
    content = user_client.get("/rooms/lobby/").content.decode()
    assert re.search(r'<form id="membership-form" method="post"[^>]*action="/rooms/lobby/leave/"', content)
    assert 'id="leave-room"' in content and 'id="join-room"' not in content


# --- leave -----------------------------------------------------------------------------------


def test_leave_button(user_client, user, lobby):
    member(lobby, user)
    response = user_client.post("/rooms/lobby/leave/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert not Membership.objects.exists()
    assert user_client.post("/rooms/lobby/leave/").status_code == 302  # not a member: fine


# --- read marks ------------------------------------------------------------------------------


def test_room_page_marks_read(user_client, user, staff_user, lobby):
    post_messages(lobby, staff_user, 3)
    member(lobby, user)
    user_client.get("/rooms/lobby/")
    assert Membership.objects.get(user=user).last_read_seq == 3


def test_room_page_does_not_make_a_member(user_client, user, lobby):
    user_client.get("/rooms/lobby/")
    assert not Membership.objects.exists()


@pytest.mark.parametrize("send", [
    lambda c, seq: c.post("/rooms/lobby/read/", data=json.dumps({"seq": seq}), content_type="application/json"),
    lambda c, seq: c.post("/rooms/lobby/read/", {"seq": str(seq)}),
], ids=["json", "form"])
def test_read_endpoint_moves_forward_only_and_caps(user_client, user, staff_user, lobby, send):
    post_messages(lobby, staff_user, 5)
    member(lobby, user)
    assert send(user_client, 3).status_code == 204
    assert Membership.objects.get(user=user).last_read_seq == 3
    assert send(user_client, 1).status_code == 204
    assert Membership.objects.get(user=user).last_read_seq == 3  # never backwards
    assert send(user_client, 999).status_code == 204
    assert Membership.objects.get(user=user).last_read_seq == 5  # capped at the last message


@pytest.mark.parametrize("body, content_type", [
    ('{"seq": -1}', "application/json"), ('{"seq": "3"}', "application/json"),
    ('{"seq": true}', "application/json"), ('{"seq": 1.5}', "application/json"),
    ("[3]", "application/json"), ("not json", "application/json"), ("{}", "application/json"),
    ("seq=abc", "application/x-www-form-urlencoded"), ("seq=", "application/x-www-form-urlencoded"),
    ("seq=-2", "application/x-www-form-urlencoded"), ("", "application/x-www-form-urlencoded"),
])
def test_read_endpoint_bad_seq_400(user_client, user, lobby, body, content_type):
    member(lobby, user)
    response = user_client.post("/rooms/lobby/read/", data=body, content_type=content_type)
    assert response.status_code == 400 and "seq" in response.json()["error"]


def test_read_endpoint_non_member_is_a_no_op(user_client, user, lobby):
    assert user_client.post("/rooms/lobby/read/", {"seq": "1"}).status_code == 204
    assert not Membership.objects.exists()


@pytest.mark.parametrize("path", ["form", "json", "proxy"])
def test_author_has_read_their_message(client, user, staff_user, lobby, no_publish, path):
    post_messages(lobby, staff_user, 2)
    member(lobby, user, last_read_seq=1)
    client.force_login(user)
    if path == "proxy":
        body = {"client": "c", "transport": "websocket", "protocol": "json", "encoding": "json",
                "user": str(user.pk), "channel": "rooms:lobby", "data": {"text": "mine"}}
        client.post("/centrifugo/publish/", data=json.dumps(body), content_type="application/json")
    else:
        extra = {"HTTP_ACCEPT": "application/json"} if path == "json" else {}
        client.post("/rooms/lobby/messages/", {"text": "mine"}, **extra)
    assert Membership.objects.get(user=user).last_read_seq == 3
    assert Membership.objects.get(user=user).unread == 0


# --- the index page --------------------------------------------------------------------------


def _my_rooms(content: str) -> dict[str, tuple[str, str, str]]:
    """``{name: (data-last-read, data-count, text)}`` of #my-rooms' items."""
    block = re.search(r'<ul id="my-rooms"[^>]*>(.*?)</ul>', content, re.S)
    assert block, "#my-rooms missing"
    return {
        name: (last_read, count, text)
        for name, last_read, count, text in re.findall(
            r'<li class="room" data-name="([^"]+)" data-last-read="(\d+)">.*?'
            r'<span class="unread" data-count="(\d+)"[^>]*>(\d+)</span>', block.group(1), re.S)
    }


def test_index_your_rooms_with_unread_counts(user_client, user, staff_user, lobby):
    other = Room.objects.create(name="other")
    quiet = Room.objects.create(name="quiet")
    Room.objects.create(name="elsewhere")
    post_messages(lobby, staff_user, 5)
    post_messages(other, staff_user, 2)
    member(lobby, user, last_read_seq=2)
    member(other, user, last_read_seq=2)
    member(quiet, user, last_read_seq=7)  # a mark past the last message never shows below 0
    response = user_client.get("/")
    assert _my_rooms(response.content.decode()) == {
        "lobby": ("2", "3", "3"), "other": ("2", "0", "0"), "quiet": ("7", "0", "0")}
    assert [m.room.name for m in response.context["my_rooms"]] == ["lobby", "other", "quiet"]
    # The other list keeps only rooms the user may enter and is not a member of.
    assert [r.name for r in response.context["rooms"]] == ["elsewhere"]
    assert "no-cache" in response["Cache-Control"]


def test_index_hides_memberships_the_level_refuses(user_client, user, lobby):
    member(lobby, user)
    lobby.access = "staff"
    lobby.save()
    response = user_client.get("/")
    assert _my_rooms(response.content.decode()) == {}
    assert 'id="my-rooms-empty"' in response.content.decode()
    assert list(response.context["rooms"]) == []


def test_index_config_and_ids(user_client, user):
    content = user_client.get("/").content.decode()
    for marker in ['id="my-rooms"', 'id="rooms"', 'id="join-form"', 'id="join-submit"', 'id="id_name"',
                   'id="notify-status"', 'data-state="connecting"', 'id="live-transport"', 'id="notices"',
                   "chat/vendor/centrifuge.js", "chat/centrifugo-client.js", "chat/notices.js", "chat/rooms.js"]:
        assert marker in content, marker
    config = json.loads(re.search(r'<script id="rooms-config" type="application/json">(.*?)</script>',
                                  content, re.S).group(1))
    assert config["personalChannel"] == f"personal:#{user.pk}"
    assert config["notificationsPath"] == "/ws/user/" and config["transport"] == "centrifugo"
    assert [t["transport"] for t in config["transports"]] == ["websocket", "http_stream", "sse"]


@pytest.mark.parametrize("backend, query, transport", [
    ("channels", "", "channels"), ("both", "?transport=channels", "channels"), ("both", "", "centrifugo"),
])
def test_index_transport(settings, user_client, backend, query, transport):
    settings.CHAT_REALTIME_BACKEND = backend
    content = user_client.get("/" + query).content.decode()
    assert re.search(rf'id="notify-status"[^>]*data-transport="{transport}"', content)


def test_membership_unread_property(user, lobby):
    lobby.last_seq = 4
    assert Membership(room=lobby, user=user, last_read_seq=1).unread == 3
    assert Membership(room=lobby, user=user, last_read_seq=9).unread == 0


def test_superuser_sees_every_room(client, lobby, staff_room):
    root = make_user("root", is_staff=True, is_superuser=True)
    Room.objects.create(name="top", access="superuser")
    client.force_login(root)
    assert [r.name for r in client.get("/").context["rooms"]] == ["lobby", "staff", "top"]
