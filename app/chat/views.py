"""Browser-facing pages: room list, join-by-name, room page, message form fallback, health check.

The room presence JSON endpoint is in chat.presence_views, the token endpoints in
chat.token_views."""
from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, IntegrityError, connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from . import realtime
from .forms import JoinRoomForm, MessageForm
from .messages import history
from .models import Message, Room

logger = logging.getLogger(__name__)


def _index_context(request: HttpRequest, form: JoinRoomForm) -> dict:
    return {"rooms": Room.objects.visible_to(request.user), "join_form": form}


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """List the rooms the user may enter plus a join-by-name form."""
    return render(request, "chat/index.html", _index_context(request, JoinRoomForm()))


@login_required
@require_GET
def join(request: HttpRequest) -> HttpResponse:
    """GET ``?name=<room>``: redirect to an existing allowed room, create an unknown valid one
    (public), re-render the index with an error for an invalid name, 403 for a staff-only room."""
    form = JoinRoomForm({"name": request.GET.get("name", "").strip().lower()})
    if not form.is_valid():
        return render(request, "chat/index.html", _index_context(request, form))
    name = form.cleaned_data["name"]
    try:
        room, created = Room.objects.get_or_create(name=name, defaults={"title": name})
    except IntegrityError:  # concurrent creation of the same name
        room, created = Room.objects.get(name=name), False
    if created:
        logger.info("room %s created by %s", room.name, request.user.get_username())
    if not room.allows(request.user):
        raise PermissionDenied("This room is for staff only.")
    return redirect("chat:room", name=room.name)


def _history(room: Room) -> list[Message]:
    """The last CHAT_HISTORY_SIZE messages of ``room``, oldest first."""
    return history(room)


@never_cache
@login_required
@require_GET
def room(request: HttpRequest, name: str) -> HttpResponse:
    """Room page: DB history plus the live area driven by chat.js (config embedded via json_script)."""
    room_obj = get_object_or_404(Room, name=name)
    if not room_obj.allows(request.user):
        raise PermissionDenied("This room is for staff only.")
    return render(request, "chat/room.html", _room_context(request, room_obj, MessageForm()))


TRANSPORTS = ("centrifugo", "channels")


def page_transport(request: HttpRequest) -> str:
    """The realtime transport the room page uses: ``"centrifugo"`` or ``"channels"``.

    CHAT_REALTIME_BACKEND ``centrifugo`` / ``channels`` -> that one; ``both`` -> Centrifugo
    unless the page URL has ``?transport=channels`` (``?transport=centrifugo`` and unknown
    values select Centrifugo).
    """
    backend = settings.CHAT_REALTIME_BACKEND
    if backend in TRANSPORTS:
        return backend
    return "channels" if request.GET.get("transport") == "channels" else "centrifugo"


def channels_path(room_obj: Room) -> str:
    """Same-origin path of the room's Channels WebSocket (chat.routing): ``/ws/chat/<name>/``."""
    return f"/ws/chat/{room_obj.name}/"


def _with_transport_query(url: str, request: HttpRequest) -> str:
    """``url`` plus ``?transport=channels`` when the current page chose Channels through the
    query (backend ``both``), so the form fallback's redirect keeps the page's transport."""
    if settings.CHAT_REALTIME_BACKEND == "both" and page_transport(request) == "channels":
        return f"{url}?transport=channels"
    return url


def _room_context(request: HttpRequest, room_obj: Room, form: MessageForm) -> dict:
    """Template context; ``chat_config`` is embedded as JSON (``#chat-config``) for chat.js:

    ``channel`` Centrifugo channel ``rooms:<name>``; ``websocketPath`` Centrifugo WebSocket path;
    ``channelsPath`` Channels WebSocket path; ``backend`` CHAT_REALTIME_BACKEND; ``transport``
    the one this page uses (page_transport); ``clientAuth`` CHAT_CENTRIFUGO_CLIENT_AUTH
    (``proxy`` | ``jwt``); ``staffOnly`` bool (jwt: the subscription needs a token);
    ``tokenUrl`` / ``subscriptionTokenUrl`` chat.token_views; ``presenceUrl``
    chat.presence_views; ``presenceTtl`` CHAT_PRESENCE_TTL seconds (Channels heartbeats every
    TTL/2); ``username``; ``maxLength`` CHAT_MESSAGE_MAX_LENGTH.
    """
    transport = page_transport(request)
    return {
        "room": room_obj,
        "history": _history(room_obj),
        "message_form": form,
        "transport": transport,
        "post_url": _with_transport_query(
            reverse("chat:post_message", kwargs={"name": room_obj.name}), request
        ),
        "chat_config": {
            "channel": room_obj.channel(),
            "websocketPath": settings.CHAT_WEBSOCKET_PATH,
            "channelsPath": channels_path(room_obj),
            "backend": settings.CHAT_REALTIME_BACKEND,
            "transport": transport,
            "clientAuth": settings.CHAT_CENTRIFUGO_CLIENT_AUTH,
            "staffOnly": room_obj.staff_only,
            "tokenUrl": reverse("chat:token"),
            "subscriptionTokenUrl": reverse("chat:subscription_token"),
            "presenceUrl": reverse("chat:presence", kwargs={"name": room_obj.name}),
            "presenceTtl": settings.CHAT_PRESENCE_TTL,
            "username": request.user.get_username(),
            "maxLength": settings.CHAT_MESSAGE_MAX_LENGTH,
        },
    }


@login_required
@require_POST
def post_message(request: HttpRequest, name: str) -> HttpResponse:
    """No-JavaScript fallback for sending: saves the message, broadcasts it with
    chat.realtime.publish (Centrifugo HTTP API and/or Channels group, per
    CHAT_REALTIME_BACKEND; best effort, failures are logged) and redirects back to the room,
    keeping ``?transport=channels`` (400 on invalid text)."""
    room_obj = get_object_or_404(Room, name=name)
    if not room_obj.allows(request.user):
        raise PermissionDenied("This room is for staff only.")
    form = MessageForm(request.POST)
    if not form.is_valid():
        return render(
            request, "chat/room.html", _room_context(request, room_obj, form), status=400
        )
    message = Message.objects.create(room=room_obj, user=request.user, text=form.cleaned_data["text"])
    try:
        realtime.publish(room_obj.channel(), message.as_dict())
    except realtime.RealtimeError:
        logger.warning("message %s saved but not broadcast", message.pk)
    return redirect(
        _with_transport_query(reverse("chat:room", kwargs={"name": room_obj.name}), request)
    )


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """``200 ok`` (text/plain) after ``SELECT 1``; ``503 database unavailable`` on a DB error."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        logger.exception("health check: database unavailable")
        return HttpResponse("database unavailable", status=503, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")
