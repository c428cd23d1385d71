"""Centrifugo v6 HTTP proxy endpoints (called by Centrifugo, never by browsers).

Protocol source: https://centrifugal.dev/docs/server/proxy (v6 docs, "Proxy events to the
backend"). Every call is an HTTP POST with a JSON body; the reply is HTTP 200 with a JSON
object holding exactly one of ``result``, ``error`` or ``disconnect``:

- ``error``: ``{"code": int, "message": str}`` -- codes for applications must be in
  [400, 1999] ("Return custom error"); Centrifugo's built-in client codes may be reused
  (https://centrifugal.dev/docs/server/codes: 101 unauthorized, 102 unknown channel,
  103 permission denied).
- ``disconnect``: ``{"code": int, "reason": str}`` -- codes in [4000, 4499] advise a
  reconnect, [4500, 4999] are terminal; reason at most 32 bytes ("Return custom disconnect").

A non-200 status (here: 400 for a body that is not a JSON object, 405 for non-POST) makes
Centrifugo answer the client with the temporary error ``100: internal server error``.

Centrifugo configuration these views expect (v6 ``config.json``)::

    "client": {"proxy": {"connect": {"enabled": true,
        "endpoint": "http://DJANGO/centrifugo/connect/", "http_headers": ["Cookie"]}}},
    "channel": {"proxy": {
        "subscribe": {"endpoint": "http://DJANGO/centrifugo/subscribe/"},
        "publish": {"endpoint": "http://DJANGO/centrifugo/publish/"}},
      "namespaces": [{"name": "rooms",
        "subscribe_proxy_enabled": true, "publish_proxy_enabled": true}]}
"""
from __future__ import annotations

import json
import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import activity, realtime
from .session_auth import user_from_session
from .messages import (  # noqa: F401  (codes re-exported for existing importers)
    ERROR_BAD_MESSAGE,
    ERROR_EMPTY_MESSAGE,
    ERROR_MESSAGE_TOO_LONG,
    MessageError,
    clean_text,
)
from .models import Message, Room, room_name_from_channel

logger = logging.getLogger(__name__)

# Built-in Centrifugo client error codes, reused (docs/server/codes).
ERROR_UNKNOWN_CHANNEL = 102
ERROR_PERMISSION_DENIED = 103
# Application error codes 1000-1002, range [400, 1999] (docs/server/proxy#return-custom-error),
# are defined in chat.messages together with the validation shared with the Channels consumer.
# Terminal custom disconnect, range [4500, 4999] (docs/server/proxy#return-custom-disconnect).
DISCONNECT_UNAUTHORIZED = 4501


def _error(code: int, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}})


def _body(request: HttpRequest) -> dict[str, Any] | None:
    """The JSON object sent by Centrifugo, or None if the body is not a JSON object."""
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _bad_request() -> JsonResponse:
    return JsonResponse({"detail": "expected a JSON object"}, status=400)


def _authorize_channel(body: dict[str, Any]) -> tuple[Room | None, Any, JsonResponse | None]:
    """Resolve ``body["channel"]`` to a Room and ``body["user"]`` (a user pk as a string) to an
    active user the room's access level admits (``Room.allows``: users / groups / staff /
    superuser, chat.access). Returns ``(room, user, None)`` or ``(None, None, error_response)``:
    102 for a malformed channel or missing room, 103 for an unknown user or a refused one."""
    name = room_name_from_channel(body.get("channel"))
    room = Room.objects.filter(name=name).first() if name else None
    if room is None:
        return None, None, _error(ERROR_UNKNOWN_CHANNEL, "unknown channel")
    user_id = body.get("user")
    user = None
    if isinstance(user_id, str) and user_id.isdigit():
        user = get_user_model().objects.filter(pk=int(user_id), is_active=True).first()
    if user is None or not room.allows(user):
        return None, None, _error(ERROR_PERMISSION_DENIED, "permission denied")
    return room, user, None


@csrf_exempt
@require_POST
def connect(request: HttpRequest) -> JsonResponse:
    """Connect proxy (docs/server/proxy#connect-proxy).

    Request: ``{"client": str, "transport": str, "protocol": str, "encoding": str, ...}`` with
    the browser's ``Cookie`` header forwarded (``http_headers: ["Cookie"]``), so
    the Django session's user is the connecting user (chat.session_auth.user_from_session: after a
    SECRET_KEY rotation, a session signed under a fallback key still authenticates, and its key is not
    cycled, since this response never reaches the browser).

    Response: ``{"result": {"user": "<pk>", "info": {"username": str}}}`` when authenticated;
    otherwise ``{"disconnect": {"code": 4501, "reason": "unauthorized"}}`` -- the shape the docs
    recommend in "What if connection is unauthenticated/unauthorized to connect?" (4501 is
    terminal, so the browser does not reconnect in a loop).
    """
    user = user_from_session(request.session)
    if not user.is_authenticated:
        return JsonResponse(
            {"disconnect": {"code": DISCONNECT_UNAUTHORIZED, "reason": "unauthorized"}}
        )
    return JsonResponse(
        {"result": {"user": str(user.pk), "info": {"username": user.get_username()}}}
    )


@csrf_exempt
@require_POST
def subscribe(request: HttpRequest) -> JsonResponse:
    """Subscribe proxy (docs/server/proxy#subscribe-proxy).

    Request: ``{"client", "transport", "protocol", "encoding", "user": "<pk>",
    "channel": "rooms:<name>"}``.

    Response: ``{"result": {}}`` if the room's access level admits the user; else
    ``{"error": {"code": 102, "message": "unknown channel"}}`` (malformed channel or no such
    room) or ``{"error": {"code": 103, "message": "permission denied"}}``.
    """
    body = _body(request)
    if body is None:
        return _bad_request()
    room, user, error = _authorize_channel(body)
    if error is not None:
        return error
    return JsonResponse({"result": {}})


def _clean_text(data: Any) -> tuple[str | None, JsonResponse | None]:
    """Validate publication data with chat.messages.clean_text. Returns ``(text, None)`` or
    ``(None, error_response)`` with codes 1000 / 1001 / 1002."""
    try:
        return clean_text(data), None
    except MessageError as exc:
        return None, _error(exc.code, exc.message)


@csrf_exempt
@require_POST
def publish(request: HttpRequest) -> JsonResponse:
    """Publish proxy (docs/server/proxy#publish-proxy).

    Request: ``{"client", "transport", "protocol", "encoding", "user": "<pk>",
    "channel": "rooms:<name>", "data": {"text": str}}``.

    Response: ``{"result": {"data": Message.as_dict()}}`` -- ``PublishResult.data`` replaces the
    client's data, so subscribers receive ``{"id", "room", "user", "text", "created_at"}``.
    Errors: 102/103 as for subscribe; 1000 malformed data, 1001 empty text, 1002 text longer
    than CHAT_MESSAGE_MAX_LENGTH.

    With CHAT_REALTIME_BACKEND ``both`` the saved message is also sent to the room's Channels
    group (chat.realtime.relay; a channel-layer failure is logged and the result still
    returned), so browsers on the Channels path receive it too. The room's other members are
    told (chat.activity.announce_activity, in the message's transaction: outbox rows commit with
    the message; failures logged). Its live sends (API broadcast without the outbox, Channels
    group sends) run after the commit in a background thread, so this answer -- due within
    Centrifugo's proxy timeout (1 s), or the client gets an error and may send the saved message
    again -- never waits for them.
    """
    body = _body(request)
    if body is None:
        return _bad_request()
    room, user, error = _authorize_channel(body)
    if error is not None:
        return error
    text, error = _clean_text(body.get("data"))
    if error is not None:
        return error
    with transaction.atomic():
        message = Message.objects.create(room=room, user=user, text=text)
        activity.announce_activity(message)
    data = message.as_dict()
    realtime.relay(room.channel(), data, source=realtime.CENTRIFUGO)
    return JsonResponse({"result": {"data": data}})
