"""GET /rooms/<name>/presence/ (chat.presence_views): union of Centrifugo (server API presence
through the fake cent client) and Channels (chat.presence, in-process store) per backend."""
from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync

from chat import presence
from tests.conftest import cent_requests

URL = "/rooms/lobby/presence/"
# Nothing listens on the discard port: real connection failures, not mocks.
DEAD_CENTRIFUGO = "http://127.0.0.1:9/api"
DEAD_REDIS = "redis://127.0.0.1:9/0"


@pytest.fixture
def online(realtime_settings, fake_cent, user, staff_user):
    """alice (pk) and an anonymous client in Centrifugo, plus a stale/unknown user id and a
    second tab of alice; bob and carol on the Channels path."""
    fake_cent.presence_users = {
        "c1": str(user.pk), "c2": str(user.pk), "c3": "", "c4": "999999", "c5": "not-a-pk",
    }
    for name in ("bob", "carol"):
        async_to_sync(presence.touch)("lobby", name)
    return fake_cent


def _centrifugo_down(settings, monkeypatch) -> None:
    """The real cent client against a closed port (the fake client ignores the URL)."""
    import cent

    monkeypatch.setattr("chat.centrifugo.Client", cent.Client)
    settings.CENTRIFUGO_HTTP_API_URL = DEAD_CENTRIFUGO


@pytest.mark.django_db
def test_centrifugo_backend(settings, user_client, lobby, online):
    from cent import PresenceRequest

    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    response = user_client.get(URL)
    assert response.status_code == 200
    assert response.json() == {"users": ["alice"], "backends": {"centrifugo": ["alice"]}}
    assert cent_requests(online) == [PresenceRequest(channel="rooms:lobby")]


@pytest.mark.django_db
def test_channels_backend(settings, user_client, lobby, online):
    settings.CHAT_REALTIME_BACKEND = "channels"
    response = user_client.get(URL)
    assert response.status_code == 200
    assert response.json() == {"users": ["bob", "carol"], "backends": {"channels": ["bob", "carol"]}}
    assert cent_requests(online) == []


@pytest.mark.django_db
def test_both_backends_union(settings, user_client, lobby, online):
    settings.CHAT_REALTIME_BACKEND = "both"
    async_to_sync(presence.touch)("lobby", "alice")  # alice on both paths: listed once
    response = user_client.get(URL)
    assert response.status_code == 200
    assert response.json() == {
        "users": ["alice", "bob", "carol"],
        "backends": {"centrifugo": ["alice"], "channels": ["alice", "bob", "carol"]},
    }


@pytest.mark.django_db
def test_empty_room(settings, user_client, lobby, realtime_settings, fake_cent):
    settings.CHAT_REALTIME_BACKEND = "both"
    assert user_client.get(URL).json() == {"users": [], "backends": {"centrifugo": [], "channels": []}}


@pytest.mark.django_db
def test_centrifugo_down_channels_still_answer(settings, user_client, lobby, online, caplog,
                                              monkeypatch):
    settings.CHAT_REALTIME_BACKEND = "both"
    _centrifugo_down(settings, monkeypatch)
    response = user_client.get(URL)
    assert response.status_code == 200
    assert response.json() == {
        "users": ["bob", "carol"], "backends": {"channels": ["bob", "carol"]}, "errors": ["centrifugo"],
    }
    assert "presence of room lobby from centrifugo failed" in caplog.text


@pytest.mark.django_db
def test_centrifugo_unconfigured_counts_as_failure(settings, user_client, lobby, online):
    settings.CHAT_REALTIME_BACKEND = "both"
    settings.CENTRIFUGO_HTTP_API_URL = ""
    assert user_client.get(URL).json()["errors"] == ["centrifugo"]


@pytest.mark.django_db
def test_centrifugo_api_error_counts_as_failure(settings, user_client, lobby, online, monkeypatch):
    """E.g. error 108 "not available" when the namespace has no presence."""
    from cent import CentApiResponseError

    def refuse(self, request):
        raise CentApiResponseError(code=108, message="not available")

    monkeypatch.setattr(online, "presence", refuse)
    settings.CHAT_REALTIME_BACKEND = "both"
    body = user_client.get(URL).json()
    assert body["errors"] == ["centrifugo"] and body["backends"] == {"channels": ["bob", "carol"]}


@pytest.mark.django_db
def test_redis_down_centrifugo_still_answers(settings, user_client, lobby, online, caplog):
    settings.CHAT_REALTIME_BACKEND = "both"
    settings.CHANNELS_REDIS_URL = DEAD_REDIS
    response = user_client.get(URL)
    assert response.status_code == 200
    assert response.json() == {
        "users": ["alice"], "backends": {"centrifugo": ["alice"]}, "errors": ["channels"],
    }
    assert "presence of room lobby from channels failed" in caplog.text


@pytest.mark.django_db
def test_all_backends_down_503(settings, user_client, lobby, online, monkeypatch):
    settings.CHAT_REALTIME_BACKEND = "both"
    _centrifugo_down(settings, monkeypatch)
    settings.CHANNELS_REDIS_URL = DEAD_REDIS
    response = user_client.get(URL)
    assert response.status_code == 503
    assert response.json() == {"users": [], "backends": {}, "errors": ["centrifugo", "channels"]}


@pytest.mark.django_db
@pytest.mark.parametrize("backend", ["centrifugo", "channels"])
def test_single_backend_down_503(settings, user_client, lobby, online, monkeypatch, backend):
    settings.CHAT_REALTIME_BACKEND = backend
    if backend == "centrifugo":
        _centrifugo_down(settings, monkeypatch)
    else:
        settings.CHANNELS_REDIS_URL = DEAD_REDIS
    response = user_client.get(URL)
    assert response.status_code == 503 and response.json()["errors"] == [backend]


@pytest.mark.django_db
def test_staff_room_forbidden_for_non_staff(settings, user_client, staff_room, online):
    settings.CHAT_REALTIME_BACKEND = "both"
    response = user_client.get("/rooms/staff/presence/")
    assert response.status_code == 403 and response.json() == {"error": "permission denied"}
    assert cent_requests(online) == []


@pytest.mark.django_db
def test_staff_room_for_staff(settings, staff_client, staff_room, online):
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    response = staff_client.get("/rooms/staff/presence/")
    assert response.status_code == 200
    assert [r.channel for r in cent_requests(online)] == ["rooms:staff"]


@pytest.mark.django_db
def test_unknown_room_404(user_client, online):
    response = user_client.get("/rooms/nosuch/presence/")
    assert response.status_code == 404 and response.json() == {"error": "unknown room"}


@pytest.mark.django_db
def test_anonymous_redirected_to_login(client, lobby, online):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/rooms/lobby/presence/")


@pytest.mark.django_db
def test_get_only_and_never_cached(settings, user_client, lobby, online):
    settings.CHAT_REALTIME_BACKEND = "channels"
    assert user_client.post(URL).status_code == 405
    response = user_client.get(URL)
    assert "no-cache" in response["Cache-Control"] and "max-age=0" in response["Cache-Control"]
    assert response["Content-Type"] == "application/json"


def test_presence_members_private_connection_local_store(realtime_settings):
    """Without Redis the flag changes nothing (in-process store)."""
    async_to_sync(presence.touch)("lobby", "dave")
    assert async_to_sync(presence.members)("lobby", private_connection=True) == ["dave"]


@pytest.mark.django_db
def test_sentinels_down_centrifugo_still_answers(settings, user_client, lobby, online, caplog):
    """Presence through Redis Sentinel, with no sentinel listening: the Channels path fails alone."""
    settings.CHAT_REALTIME_BACKEND = "both"
    settings.CHAT_REDIS_SENTINEL = {
        "sentinels": [("127.0.0.1", 9)], "master_name": "rtstack",
        "sentinel_kwargs": {"socket_connect_timeout": 1, "password": "sentinel-secret"},
        "username": "django", "password": "app-secret",
    }
    response = user_client.get(URL)
    assert response.status_code == 200
    assert response.json()["errors"] == ["channels"]
    assert "presence of room lobby from channels failed" in caplog.text


def test_sentinel_client_asks_for_the_master(settings):
    """chat.presence builds its client with Sentinel(...).master_for(...): the pool asks the sentinels
    (with their password) for the master and authenticates to it as the app's user."""
    from redis.asyncio.sentinel import SentinelConnectionPool

    settings.CHANNELS_REDIS_URL = ""
    settings.CHAT_REDIS_SENTINEL = {
        "sentinels": [("10.0.0.3", 26379), ("10.0.0.4", 26379)], "master_name": "rtstack",
        "sentinel_kwargs": {"password": "sentinel-secret"}, "username": "django", "password": "app-secret",
    }
    client, manager = presence._connect()
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "rtstack"
    assert (pool.connection_kwargs["username"], pool.connection_kwargs["password"]) == ("django", "app-secret")
    assert [s.connection_pool.connection_kwargs["port"] for s in manager.sentinels] == [26379, 26379]
    assert {s.connection_pool.connection_kwargs["password"] for s in manager.sentinels} == {"sentinel-secret"}


def test_shards_presence_uses_the_first(settings):
    settings.CHAT_REDIS_SENTINEL = None
    settings.CHANNELS_REDIS_URL = "redis://c:pw@10.0.0.3:6379/0,redis://c:pw@10.0.0.4:6379/0"
    client, manager = presence._connect()
    assert manager is None and client.connection_pool.connection_kwargs["host"] == "10.0.0.3"
