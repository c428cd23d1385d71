"""The room's messages URL: GET the JSON gap fill (chat.views.messages_after), POST a message in
JSON mode, and the 503 answer of chat.db_errors when the database is down."""
from datetime import timedelta

import pytest
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, transaction
from django.test import Client
from django.utils import timezone

from chat import realtime
from chat.models import Message

URL = "/rooms/lobby/messages/"
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def no_publish(monkeypatch):
    """Record chat.realtime.publish calls instead of broadcasting."""
    calls = []
    monkeypatch.setattr("chat.realtime.publish", lambda channel, data: calls.append((channel, data)))
    return calls


def _messages(lobby, user, n, start=0):
    return [Message.objects.create(room=lobby, user=user, text=f"m{i}") for i in range(start, start + n)]


# --- GET: the gap fill ---------------------------------------------------------------------


@pytest.mark.django_db
def test_get_all_in_id_order_as_dicts(user_client, user, lobby, staff_room):
    # created_at runs backwards: the answer must still be in id order.
    now = timezone.now()
    made = [Message.objects.create(room=lobby, user=user, text=f"m{i}", created_at=now - timedelta(minutes=i))
            for i in range(3)]
    Message.objects.create(room=staff_room, user=user, text="other room")
    response = user_client.get(URL)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.json() == {"messages": [m.as_dict() for m in made], "more": False}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_get_after(user_client, user, lobby):
    made = _messages(lobby, user, 5)
    body = user_client.get(URL, {"after": made[2].pk}).json()
    assert [m["id"] for m in body["messages"]] == [made[3].pk, made[4].pk] and body["more"] is False
    assert user_client.get(URL, {"after": made[4].pk}).json() == {"messages": [], "more": False}


@pytest.mark.django_db
def test_get_limit_and_more_page_through(user_client, user, lobby):
    made = _messages(lobby, user, 5)
    ids, after, pages = [], 0, 0
    while True:
        body = user_client.get(URL, {"after": after, "limit": 2}).json()
        pages += 1
        ids += [m["id"] for m in body["messages"]]
        if not body["more"]:
            break
        after = body["messages"][-1]["id"]
    assert ids == [m.pk for m in made] and pages == 3
    body = user_client.get(URL, {"limit": 5}).json()
    assert len(body["messages"]) == 5 and body["more"] is False


@pytest.mark.django_db
def test_get_limit_default_and_maximum_is_the_page_size(user_client, user, lobby, settings):
    settings.CHAT_GAP_FILL_PAGE_SIZE = 3
    made = _messages(lobby, user, 4)
    for query in ({}, {"limit": 1000}):
        body = user_client.get(URL, query).json()
        assert [m["id"] for m in body["messages"]] == [m.pk for m in made[:3]] and body["more"] is True


@pytest.mark.django_db
@pytest.mark.parametrize("query", [
    {"after": "-1"}, {"after": "abc"}, {"after": "1.5"}, {"after": ""}, {"after": " 1"},
    {"after": "+1"}, {"after": "\u00b2"}, {"after": str(2**63)}, {"after": "1" * 30},
    {"limit": "0"}, {"limit": "x"}, {"limit": "-5"},
])
def test_get_bad_query_400(user_client, lobby, query):
    response = user_client.get(URL, query)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


@pytest.mark.django_db
def test_get_staff_room(user_client, staff_user, staff_room):
    assert user_client.get("/rooms/staff/messages/").status_code == 403
    staff = Client()
    staff.force_login(staff_user)
    assert staff.get("/rooms/staff/messages/").json() == {"messages": [], "more": False}


@pytest.mark.django_db
def test_get_unknown_room_404(user_client):
    assert user_client.get("/rooms/nope/messages/").status_code == 404


@pytest.mark.django_db
def test_get_login_required(client, lobby):
    response = client.get(URL, HTTP_ACCEPT="application/json")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_other_methods_405(user_client, lobby, method):
    assert getattr(user_client, method)(URL).status_code == 405


@pytest.mark.django_db
def test_room_page_config_has_messages_url(user_client, lobby):
    response = user_client.get("/rooms/lobby/")
    assert response.context["chat_config"]["messagesUrl"] == URL
    content = response.content.decode()
    assert content.index("chat/gapfill.js") < content.index("chat/chat.js")


# --- POST: JSON mode -----------------------------------------------------------------------


@pytest.mark.django_db
def test_post_json_201(user_client, lobby, no_publish):
    response = user_client.post(URL, {"text": "  hi  "}, **JSON)
    assert response.status_code == 201
    message = Message.objects.get()
    assert message.text == "hi"
    assert response.json() == {"message": message.as_dict()}
    assert no_publish == [("rooms:lobby", message.as_dict())]


@pytest.mark.django_db
def test_post_json_400(user_client, lobby, settings, no_publish):
    settings.CHAT_MESSAGE_MAX_LENGTH = 5
    empty = user_client.post(URL, {"text": "  "}, **JSON)
    assert empty.status_code == 400 and empty.json() == {"errors": {"text": ["This field is required."]}}
    long = user_client.post(URL, {"text": "too long"}, **JSON)
    assert long.status_code == 400 and long.json() == {"errors": {"text": ["Message too long (max 5 characters)."]}}
    assert not Message.objects.exists() and no_publish == []


@pytest.mark.django_db
@pytest.mark.parametrize("accept, json_mode", [
    ("application/json", True),
    ("application/json, text/html;q=0.5", True),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),  # a browser form
    ("*/*", False),
    (None, False),
])
def test_post_mode_follows_accept(user_client, lobby, no_publish, accept, json_mode):
    extra = {"HTTP_ACCEPT": accept} if accept else {}
    response = user_client.post(URL, {"text": "hi"}, **extra)
    assert response.status_code == (201 if json_mode else 302)


@pytest.mark.django_db
def test_post_json_csrf_by_header(user, lobby, no_publish):
    """What API clients (and the browser test) do: the csrftoken cookie plus X-CSRFToken."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(URL, {"text": "no token"}, **JSON).status_code == 403
    client.get("/rooms/lobby/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post(URL, {"text": "with token"}, HTTP_X_CSRFTOKEN=token, **JSON)
    assert response.status_code == 201 and response.json()["message"]["text"] == "with token"


@pytest.mark.django_db
def test_post_json_staff_room_403(user_client, staff_room):
    assert user_client.post("/rooms/staff/messages/", {"text": "hi"}, **JSON).status_code == 403
    assert not Message.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("accept, status", [("application/json", 201), ("text/html", 302)])
def test_realtime_error_keeps_the_message(user_client, lobby, monkeypatch, caplog, accept, status):
    def fail(channel, data):
        raise realtime.RealtimeError("centrifugo down")

    monkeypatch.setattr("chat.realtime.publish", fail)
    response = user_client.post(URL, {"text": "kept"}, HTTP_ACCEPT=accept)
    assert response.status_code == status
    assert Message.objects.get().text == "kept"
    assert "saved but not broadcast" in caplog.text


@pytest.mark.django_db
def test_failed_write_inside_publish_keeps_the_message(user_client, lobby, monkeypatch):
    """publish() turns a refused outbox write into RealtimeError. Django marks the transaction
    for rollback when a save fails inside an atomic block (mark_for_rollback_on_error), so the
    view must isolate publish in a savepoint, or the message would silently vanish after 201."""
    def publish(channel, data):
        try:
            with transaction.mark_for_rollback_on_error():
                raise DatabaseError("permission denied for table chat_outbox")
        except DatabaseError:
            raise realtime.RealtimeError("outbox write failed") from None

    monkeypatch.setattr("chat.realtime.publish", publish)
    response = user_client.post(URL, {"text": "stays"}, **JSON)
    assert response.status_code == 201
    assert Message.objects.get().pk == response.json()["message"]["id"]


# --- database unavailable: 503 ---------------------------------------------------------------


def _db_down(*args, **kwargs):
    raise OperationalError("could not connect to server: Connection refused")


@pytest.mark.django_db
def test_db_down_on_post_json_503(user_client, lobby, monkeypatch, no_publish):
    monkeypatch.setattr(Message.objects, "create", _db_down)
    response = user_client.post(URL, {"text": "hi"}, **JSON)
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response.json() == {"error": "database unavailable, try again"}
    assert no_publish == []


@pytest.mark.django_db
@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_db_down_on_post_form_503_page(user_client, lobby, monkeypatch, no_publish, error):
    def down(*args, **kwargs):
        raise error("connection already closed")

    monkeypatch.setattr(Message.objects, "create", down)
    response = user_client.post(URL, {"text": "hi"})
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response["Content-Type"].startswith("text/html")
    assert "The chat's database is unavailable. Your message was not saved" in response.content.decode()


@pytest.mark.django_db
def test_db_down_on_gap_fill_503_json(user_client, lobby, monkeypatch):
    monkeypatch.setattr(Message.objects, "filter", _db_down)
    response = user_client.get(URL, **JSON)
    assert response.status_code == 503 and response.json() == {"error": "database unavailable, try again"}


@pytest.mark.django_db
def test_db_error_during_publish_rolls_the_message_back(user_client, lobby, monkeypatch):
    """publish() may write an outbox row in the caller's transaction: if that fails, the
    message must not stay saved without it (atomic block)."""
    monkeypatch.setattr("chat.realtime.publish", _db_down)
    response = user_client.post(URL, {"text": "half"}, **JSON)
    assert response.status_code == 503
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_db_down_while_loading_the_session_keeps_the_cookie(user_client, lobby, monkeypatch):
    """The session is loaded lazily inside the view (login_required reads request.user): the
    outage there is a 503 too, and the user is not signed out by it."""
    from django.contrib.sessions.backends.db import SessionStore

    monkeypatch.setattr(SessionStore, "_get_session_from_db", _db_down)
    response = user_client.get("/rooms/lobby/")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert "sessionid" not in response.cookies
    monkeypatch.undo()
    assert user_client.get("/rooms/lobby/").status_code == 200  # still signed in


@pytest.mark.django_db
def test_other_database_errors_are_not_outages(user_client, lobby, monkeypatch):
    def integrity(*args, **kwargs):
        raise IntegrityError("constraint")

    monkeypatch.setattr(Message.objects, "create", integrity)
    with pytest.raises(IntegrityError):
        user_client.post(URL, {"text": "hi"}, **JSON)

