"""``GET /rooms/<name>/presence/``: who is online in a room, over every enabled realtime path.

Response (JSON, never cached)::

    200 {"users": ["alice", "bob"],                       # sorted, unique: union of the lists
         "backends": {"centrifugo": ["bob"],              # one key per backend enabled by
                      "channels": ["alice", "bob"]}}      # CHAT_REALTIME_BACKEND
    200 {..., "errors": ["centrifugo"]}   # that backend failed (logged); its list is omitted
    503 {"users": [], "backends": {}, "errors": ["centrifugo", "channels"]}  # all failed

Refusals: anonymous -> redirect to the login page (login_required); ``404 {"error": "unknown
room"}``; ``403 {"error": "permission denied"}`` (the room's access level refuses the user,
``Room.allows``); 405 for
methods other than GET/HEAD.

Sources:

- ``centrifugo``: server HTTP API ``presence`` of channel ``rooms:<name>`` through ``cent``
  (https://centrifugal.dev/docs/server/server_api#presence; chat.centrifugo.presence_user_ids).
  Each client's ``user`` is ``str(user.pk)`` (connect proxy and connection tokens alike), so
  pks are mapped to usernames from the database; anonymous (``""``) and unknown ids are
  dropped. Needs ``presence: true`` on the Centrifugo ``rooms`` namespace.
- ``channels``: chat.presence.members (Redis sorted set refreshed by the consumer's
  connect/message/heartbeat), called through asgiref ``async_to_sync``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from redis import RedisError

from . import centrifugo, presence, realtime
from .models import Room

logger = logging.getLogger(__name__)


def centrifugo_usernames(room: Room) -> list[str]:
    """Sorted usernames of the users subscribed to ``room.channel()`` in Centrifugo.
    Raises centrifugo.CentrifugoUnavailable."""
    pks = {int(uid) for uid in centrifugo.presence_user_ids(room.channel()) if uid.isdigit()}
    if not pks:
        return []
    user_model = get_user_model()
    names = user_model.objects.filter(pk__in=pks).values_list(user_model.USERNAME_FIELD, flat=True)
    return sorted(set(names))


def channels_usernames(room: Room) -> list[str]:
    """Sorted usernames present in ``room`` on the Channels path. Raises redis.RedisError or
    OSError when Redis is unreachable."""
    return async_to_sync(presence.members)(room.name, private_connection=True)


_SOURCES: dict[str, tuple[Callable[[Room], list[str]], tuple[type[BaseException], ...]]] = {
    realtime.CENTRIFUGO: (centrifugo_usernames, (centrifugo.CentrifugoUnavailable,)),
    realtime.CHANNELS: (channels_usernames, (RedisError, OSError)),
}


@never_cache
@login_required
@require_GET
def room_presence(request: HttpRequest, name: str) -> JsonResponse:
    """Online users of room ``name`` per enabled backend (shape in the module docstring)."""
    room = Room.objects.filter(name=name).first()
    if room is None:
        return JsonResponse({"error": "unknown room"}, status=404)
    if not room.allows(request.user):
        return JsonResponse({"error": "permission denied"}, status=403)
    backends: dict[str, list[str]] = {}
    errors: list[str] = []
    for backend in realtime.enabled_backends():
        fetch, failures = _SOURCES[backend]
        try:
            backends[backend] = fetch(room)
        except failures:
            logger.exception("presence of room %s from %s failed", room.name, backend)
            errors.append(backend)
    body: dict[str, object] = {
        "users": sorted({user for users in backends.values() for user in users}),
        "backends": backends,
    }
    if errors:
        body["errors"] = errors
    return JsonResponse(body, status=503 if not backends else 200)
