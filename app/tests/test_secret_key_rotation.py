"""A SECRET_KEY rotation (the new key first, the previous one in SECRET_KEY_FALLBACKS) keeps users logged
in on every path, including the two whose responses never reach the browser's cookie jar: Centrifugo's
connect proxy and Channels' WebSocket handshake (chat.session_auth). No path cycles or flushes the
session: a page view re-signs its hash with the current key in place, so the browser's cookie stays valid
everywhere, also while the Django hosts roll from one key to the other."""

from __future__ import annotations

import json

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session
from django.test import Client

OLD_KEY = "old-secret-key-" + "o" * 40
NEW_KEY = "new-secret-key-" + "n" * 40
CONNECT = "/centrifugo/connect/"
BODY = {"client": "9336a229-2400-4ebc-8c50-0a643d22e8a0", "transport": "websocket", "protocol": "json",
        "encoding": "json"}


def login_under_old_key(settings, user) -> str:
    settings.SECRET_KEY = OLD_KEY
    settings.SECRET_KEY_FALLBACKS = []
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@pytest.fixture
def rooms(realtime_settings, transactional_db):
    """The lobby (transactional tests flush the data migration's rooms)."""
    from chat.models import Room

    return Room.objects.get_or_create(name="lobby", defaults={"title": "Lobby"})[0]


def rotate(settings) -> None:
    settings.SECRET_KEY = NEW_KEY
    settings.SECRET_KEY_FALLBACKS = [OLD_KEY]


@pytest.mark.django_db
def test_connect_proxy_accepts_a_session_of_the_previous_key_and_keeps_it(settings, user):
    sessionid = login_under_old_key(settings, user)
    rotate(settings)
    client = Client()
    client.cookies["sessionid"] = sessionid
    response = client.post(CONNECT, data=json.dumps(BODY), content_type="application/json")
    assert response.json()["result"]["user"] == str(user.pk)
    assert Session.objects.filter(session_key=sessionid).exists(), "the browser's session was cycled away"
    # The next page view re-signs the session with the new key, in place: same session key, still logged in.
    page = client.get("/")
    assert page.status_code == 200
    assert client.cookies["sessionid"].value == sessionid, "the session's key was cycled"
    assert client.post(CONNECT, data=json.dumps(BODY), content_type="application/json").json()["result"]


@pytest.mark.django_db
def test_a_session_goes_back_and_forth_between_hosts_on_either_key(settings, user):
    """While the rotation rolls (playbooks/rotate_secrets.yml), a host not rolled yet signs with the old key
    and accepts the new one, a rolled host the reverse: the same session, on both in turn, and two requests
    with the same cookie at once (a browser's parallel requests) all stay logged in."""
    from django.contrib.auth import HASH_SESSION_KEY

    sessionid = login_under_old_key(settings, user)
    client = Client()
    client.cookies["sessionid"] = sessionid
    for primary, fallback in [(NEW_KEY, OLD_KEY), (OLD_KEY, NEW_KEY), (NEW_KEY, OLD_KEY)]:
        settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = primary, [fallback]
        assert client.get("/").status_code == 200
        assert client.cookies["sessionid"].value == sessionid
        stale = Client()
        stale.cookies["sessionid"] = sessionid
        assert stale.get("/").status_code == 200
    session = Session.objects.get(session_key=sessionid).get_decoded()
    assert session[HASH_SESSION_KEY] == user.get_session_auth_hash()


@pytest.mark.django_db
def test_without_the_fallback_the_session_no_longer_authenticates(settings, user):
    sessionid = login_under_old_key(settings, user)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, []
    client = Client()
    client.cookies["sessionid"] = sessionid
    response = client.post(CONNECT, data=json.dumps(BODY), content_type="application/json")
    assert response.json() == {"disconnect": {"code": 4501, "reason": "unauthorized"}}


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_channels_websocket_accepts_a_session_of_the_previous_key_and_keeps_it(settings, user, rooms):
    from asgiref.sync import sync_to_async

    from chatsite.asgi import application

    sessionid = await sync_to_async(login_under_old_key)(settings, user)
    rotate(settings)
    comm = WebsocketCommunicator(application, "/ws/chat/lobby/", headers=[
        (b"host", b"localhost"), (b"origin", b"http://localhost"), (b"cookie", f"sessionid={sessionid}".encode())])
    connected, _ = await comm.connect()
    assert connected
    frame = await comm.receive_json_from()
    assert frame["type"] == "history"
    await comm.disconnect()
    assert await sync_to_async(Session.objects.filter(session_key=sessionid).exists)()
