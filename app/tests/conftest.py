"""Shared fixtures.

chatsite.settings reads its configuration from the environment, so the test defaults are
set here before Django is configured; pytest-django then sets Django up in its
``pytest_configure`` hook (settings are forced to load below so it sees them configured).
"""
from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("DATABASE_URL", "sqlite://:memory:")

from django.conf import settings  # noqa: E402

settings.INSTALLED_APPS  # noqa: B018  (force settings to load now)

import json  # noqa: E402
from typing import Any, Callable  # noqa: E402

import pytest  # noqa: E402
from django.test import Client  # noqa: E402

# Model imports stay inside fixtures: apps are not ready while this module is imported.

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def user(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def staff_user(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("bob", password=PASSWORD, is_staff=True)


@pytest.fixture
def lobby(db):
    """Created by the 0002 data migration."""
    from chat.models import Room

    return Room.objects.get(name="lobby")


@pytest.fixture
def staff_room(db):
    """Created by the 0002 data migration."""
    from chat.models import Room

    return Room.objects.get(name="staff")


@pytest.fixture
def user_client(client, user) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(client, staff_user) -> Client:
    client.force_login(staff_user)
    return client


@pytest.fixture
def proxy_post(client) -> Callable[..., Any]:
    """POST a JSON body to a Centrifugo proxy endpoint the way Centrifugo does; returns the
    response with ``.json()`` available."""

    def post(path: str, body: Any, **extra: Any):
        return client.post(path, data=json.dumps(body), content_type="application/json", **extra)

    return post


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _activity_in_the_foreground(monkeypatch):
    """Room activity's live sends (chat.activity) run in a background thread in production; here
    ``chat.activity._start`` runs them at once in the calling thread, so a test sees their effect
    as soon as the transaction commits (in a test that runs inside a transaction: only under
    ``django_capture_on_commit_callbacks(execute=True)``)."""
    monkeypatch.setattr("chat.activity._start", lambda fn, *args: fn(*args))


JWT_SECRET = "test-jwt-secret-with-at-least-32-bytes!!"


@pytest.fixture
def realtime_settings(settings):
    """In-memory channel layer (one process), no Redis for presence, a JWT secret, and a clean
    in-process presence store."""
    from chat import presence

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.CHANNELS_REDIS_URL = ""
    settings.CHAT_REDIS_SENTINEL = None
    settings.CHAT_JWT_SECRET = JWT_SECRET
    settings.CHAT_JWT_TTL = 300
    presence._local.clear()
    yield settings
    presence._local.clear()


class FakeCentClient:
    """Stands in for cent.Client. A monkeypatched client is acceptable only because the real
    Centrifugo HTTP API is exercised end to end in the molecule scenario; here we check that
    the right requests reach the client. ``presence_users`` (client id -> user id) is what
    ``presence()`` reports."""

    instances: list["FakeCentClient"] = []
    presence_users: dict[str, str] = {}

    def __init__(self, api_url: str, api_key: str, **kwargs: Any) -> None:
        self.api_url, self.api_key, self.kwargs = api_url, api_key, kwargs
        self.requests: list[Any] = []
        FakeCentClient.instances.append(self)

    def publish(self, request: Any) -> None:
        self.requests.append(request)

    def broadcast(self, request: Any) -> Any:
        """A successful reply per channel (``BroadcastResult.responses`` in channel order)."""
        from cent import BroadcastResult

        self.requests.append(request)
        return BroadcastResult.model_validate({"responses": [{"result": {}} for _ in request.channels]})

    def presence(self, request: Any) -> Any:
        from cent import ClientInfo, PresenceResult

        self.requests.append(request)
        return PresenceResult(presence={
            client: ClientInfo(client=client, user=user)
            for client, user in FakeCentClient.presence_users.items()
        })


@pytest.fixture
def fake_cent(monkeypatch, settings) -> type[FakeCentClient]:
    FakeCentClient.instances = []
    FakeCentClient.presence_users = {}
    monkeypatch.setattr("chat.centrifugo.Client", FakeCentClient)
    settings.CENTRIFUGO_HTTP_API_URL = "http://centrifugo.test:9000/api"
    settings.CENTRIFUGO_HTTP_API_KEY = "api-key"
    return FakeCentClient


def make_user(username: str, *, groups: tuple[str, ...] = (), **flags: Any) -> Any:
    """A user with PASSWORD, model ``flags`` (is_staff, is_superuser, is_active) and membership of
    the Django ``groups`` named (created if missing)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(username, password=PASSWORD, **flags)
    user.groups.set([Group.objects.get_or_create(name=name)[0] for name in groups])
    return user


@pytest.fixture
def level_rooms(db) -> dict[str, Any]:
    """One room per access level, named after it (``users``, ``groups``, ``staff``,
    ``superuser``); the ``groups`` room admits the group ``crew``."""
    from django.contrib.auth.models import Group

    from chat.models import Room

    rooms = {level: Room.objects.create(name=f"{level}-room", access=level)
             for level in ("users", "groups", "staff", "superuser")}
    rooms["groups"].groups.set([Group.objects.get_or_create(name="crew")[0]])
    return rooms


@pytest.fixture
def level_users(db) -> dict[str, Any]:
    """Users of every kind the access rule tells apart: ``plain``, ``crew`` (in group crew),
    ``other_group`` (in another group), ``staff``, ``superuser`` (also staff), ``inactive``
    (staff and in crew, but inactive)."""
    return {
        "plain": make_user("plain"),
        "crew": make_user("crew", groups=("crew",)),
        "other_group": make_user("other", groups=("outsiders",)),
        "staff": make_user("staffer", is_staff=True),
        "superuser": make_user("root", is_staff=True, is_superuser=True),
        "inactive": make_user("sleeper", is_staff=True, is_active=False, groups=("crew",)),
    }


#: Who each access level admits (the rule of chat.access), for the kinds of level_users.
ADMITTED = {
    "users": {"plain", "crew", "other_group", "staff", "superuser"},
    "groups": {"crew", "superuser"},
    "staff": {"staff", "superuser"},
    "superuser": {"superuser"},
}
#: (level, user kind, admitted) for every pair: the parameters of the enforcement tests.
LEVEL_CASES = [
    (level, kind, kind in ADMITTED[level])
    for level in ("users", "groups", "staff", "superuser")
    for kind in ("plain", "crew", "other_group", "staff", "superuser", "inactive")
]


def cent_requests(fake: type[FakeCentClient]) -> list[Any]:
    """Every request any FakeCentClient instance received, in order per instance."""
    return [request for client in fake.instances for request in client.requests]
