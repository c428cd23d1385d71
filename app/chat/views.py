"""Browser-facing pages: room list, join-by-name (POST joins, GET only goes to the room), room
page, the room's messages (GET: the JSON gap fill; POST: form fallback and JSON send), health
check.

Every room view admits exactly the users the room's access level admits (``Room.allows``,
chat.access; :func:`allowed_room`): 404 for an unknown room, 403 otherwise. The room presence
JSON endpoint is in chat.presence_views, the token endpoints in chat.token_views, join / leave /
read in chat.membership_views, the pages' script configuration in chat.page_config; database
outages are answered by chat.db_errors."""
from __future__ import annotations

import logging
import re

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import activity, membership, realtime
from .db_errors import wants_json
from .forms import JoinRoomForm, MessageForm
from .messages import history
from .models import Message, Room
from .page_config import client_config, page_transport, room_config

logger = logging.getLogger(__name__)


def _index_context(request: HttpRequest, form: JoinRoomForm) -> dict:
    """``my_rooms``: the user's memberships of rooms that admit them (chat.membership), each
    with ``room`` and ``unread``; ``rooms``: the other rooms the user may enter; ``join_form``;
    ``rooms_config`` (``#rooms-config``, rooms.js): chat.page_config.client_config."""
    mine = membership.memberships_of(request.user)
    others = Room.objects.visible_to(request.user).exclude(pk__in=[m.room_id for m in mine])
    return {
        "my_rooms": mine,
        "rooms": others,
        "join_form": form,
        "rooms_config": client_config(request),
    }


@never_cache
@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """"Your rooms" with unread counts, the other rooms the user may enter, a join-by-name form.
    Never cached, so going back to it shows fresh counts."""
    return render(request, "chat/index.html", _index_context(request, JoinRoomForm()))


def _room_named(name: str, request: HttpRequest) -> Room:
    """The room ``name`` (a valid, cleaned room name), created with access ``users`` and title
    ``name`` if unknown (logged with the creating user)."""
    try:
        room, created = Room.objects.get_or_create(name=name, defaults={"title": name})
    except IntegrityError:  # concurrent creation of the same name
        room, created = Room.objects.get(name=name), False
    if created:
        logger.info("room %s created by %s", room.name, request.user.get_username())
    return room


@login_required
@require_http_methods(["GET", "POST"])
def join(request: HttpRequest) -> HttpResponse:
    """``/rooms/join/``, the index page's join-by-name form (field ``name``; trimmed and
    lowercased, then validated by chat.forms.JoinRoomForm).

    - POST (the form; CSRF token required, 403 without): create an unknown valid room (access
      ``users``), make the user a member (chat.membership.join) and redirect (302) to
      ``/rooms/<name>/``; 403 (no membership) when the room's access level refuses the user.
    - GET ``?name=<room>`` (links, bookmarks): the same, except that the user does NOT become a
      member -- a GET changes no membership (a cross-site ``<img>`` must not make a signed-in user
      join); it only creates an unknown valid room, as it always did, and redirects to the room
      page, which has the Join button. 403 when the level refuses the user.
    - Both: an invalid name re-renders the index page with the errors (``#join-errors``),
      status 200, nothing created; 302 to the login page without a session; 405 for other
      methods.
    """
    data = request.POST if request.method == "POST" else request.GET
    form = JoinRoomForm({"name": data.get("name", "").strip().lower()})
    if not form.is_valid():
        return render(request, "chat/index.html", _index_context(request, form))
    room_obj = _room_named(form.cleaned_data["name"], request)
    if request.method == "POST":
        membership.join(room_obj, request.user)  # PermissionDenied (403) when the level refuses
    elif not room_obj.allows(request.user):
        raise PermissionDenied(membership.REFUSED)
    return redirect("chat:room", name=room_obj.name)


def _history(room: Room) -> list[Message]:
    """The last CHAT_HISTORY_SIZE messages of ``room``, oldest first."""
    return history(room)


def allowed_room(request: HttpRequest, name: str) -> Room:
    """The room ``name``: Http404 if unknown, PermissionDenied (403, chat.membership.REFUSED)
    if its access level refuses ``request.user``."""
    room_obj = get_object_or_404(Room, name=name)
    if not room_obj.allows(request.user):
        raise PermissionDenied(membership.REFUSED)
    return room_obj


@never_cache
@login_required
@require_GET
def room(request: HttpRequest, name: str) -> HttpResponse:
    """Room page: DB history plus the live area driven by chat.js (config embedded via
    json_script). Viewing it marks the room read up to its last message for a member."""
    room_obj = allowed_room(request, name)
    membership.mark_read(room_obj, request.user, room_obj.last_seq)
    return render(request, "chat/room.html", _room_context(request, room_obj, MessageForm()))


def with_transport_query(url: str, request: HttpRequest) -> str:
    """``url`` plus ``?transport=channels`` when the current page chose Channels through the
    query (backend ``both``), so the form fallback's redirect keeps the page's transport."""
    if settings.CHAT_REALTIME_BACKEND == "both" and page_transport(request) == "channels":
        return f"{url}?transport=channels"
    return url


def _room_context(request: HttpRequest, room_obj: Room, form: MessageForm) -> dict:
    """Template context: ``room``, ``history``, ``message_form``, ``transport`` (page_transport),
    ``post_url``, ``is_member`` and ``membership_url`` (the membership form: leave or join),
    and ``chat_config``, embedded as JSON (``#chat-config``) for chat.js:
    chat.page_config.room_config.
    """
    is_member = membership.is_member(room_obj, request.user)
    membership_view = "chat:leave_room" if is_member else "chat:join_room"
    return {
        "room": room_obj,
        "history": _history(room_obj),
        "message_form": form,
        "transport": page_transport(request),
        "is_member": is_member,
        "membership_url": with_transport_query(
            reverse(membership_view, kwargs={"name": room_obj.name}), request
        ),
        "post_url": with_transport_query(
            reverse("chat:post_message", kwargs={"name": room_obj.name}), request
        ),
        "chat_config": room_config(request, room_obj),
    }


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def room_messages(request: HttpRequest, name: str) -> HttpResponse:
    """``/rooms/<name>/messages/``: GET -> messages_after (JSON gap fill), POST -> post_message;
    405 otherwise."""
    if request.method == "POST":
        return post_message(request, name)
    return messages_after(request, name)


_DIGITS = re.compile(r"[0-9]{1,19}")
_MAX_ID = 2**63 - 1  # BigAutoField


def _query_int(request: HttpRequest, key: str, default: int, minimum: int) -> int | None:
    """``request.GET[key]`` as an int >= ``minimum`` (plain ASCII digits), ``default`` when
    absent; None when invalid (also when empty)."""
    if key not in request.GET:
        return default
    raw = request.GET[key]
    if not _DIGITS.fullmatch(raw):
        return None
    value = int(raw)
    return value if minimum <= value <= _MAX_ID else None


@never_cache
@login_required
@require_GET
def messages_after(request: HttpRequest, name: str) -> HttpResponse:
    """GET ``/rooms/<name>/messages/?after=<id>&limit=<n>``: the room's messages with an id
    greater than ``after``, oldest (lowest id) first -- how clients fill gaps the realtime
    layer left (the database is the source of truth).

    Query: ``after`` int >= 0, default 0 (everything); ``limit`` int >= 1, default and maximum
    CHAT_GAP_FILL_PAGE_SIZE (larger values are capped).

    Answers: 200 ``{"messages": [Message.as_dict(), ...], "more": bool}`` (at most ``limit``
    messages; ``more`` true when messages with higher ids remain: ask again with ``after`` =
    the last id); 400 ``{"error": str}`` for a bad ``after``/``limit``; 302 to the login page
    without a session; 403 the room's access level refuses the user; 404 unknown room; 503 (JSON
    with ``Accept: application/json``) when the database is down (chat.db_errors).
    """
    room_obj = allowed_room(request, name)
    page_size = settings.CHAT_GAP_FILL_PAGE_SIZE
    after = _query_int(request, "after", 0, minimum=0)
    if after is None:
        return JsonResponse(
            {"error": "after must be a non-negative integer (a message id)"}, status=400
        )
    limit = _query_int(request, "limit", page_size, minimum=1)
    if limit is None:
        return JsonResponse({"error": "limit must be a positive integer"}, status=400)
    limit = min(limit, page_size)
    rows = list(
        Message.objects.filter(room=room_obj, id__gt=after)
        .select_related("user", "room")
        .order_by("id")[: limit + 1]
    )
    return JsonResponse(
        {"messages": [message.as_dict() for message in rows[:limit]], "more": len(rows) > limit}
    )


@login_required
@require_POST
def post_message(request: HttpRequest, name: str) -> HttpResponse:
    """POST ``/rooms/<name>/messages/`` (form field ``text``): save the message, broadcast it
    with chat.realtime.publish (Centrifugo and/or the Channels group, per CHAT_REALTIME_BACKEND;
    best effort: a RealtimeError is logged, the message stays saved) and tell the room's other
    members (chat.activity.announce_activity, best effort too).

    The create, the publish and the announcement run in one ``transaction.atomic()`` block (both
    may write outbox rows in the same transaction), so a database error rolls the message back
    and chat.db_errors answers 503: nothing is half-saved. A RealtimeError (publish in a
    savepoint) keeps the message. The announcement's live sends (API broadcast without the
    outbox, Channels group sends) run after the commit in a background thread: the response
    does not wait for them.

    Two answer modes (403 the room's access level refuses the user, 404 unknown room in both):

    - JSON, when the client prefers it (``Accept: application/json``; chat.db_errors.wants_json):
      201 ``{"message": Message.as_dict()}``; 400 ``{"errors": {"text": [str, ...]}}``.
    - Otherwise the no-JavaScript form fallback: a redirect back to the room, keeping
      ``?transport=channels``; 400 with the room page and the form errors.
    """
    room_obj = allowed_room(request, name)
    json_mode = wants_json(request)
    form = MessageForm(request.POST)
    if not form.is_valid():
        if json_mode:
            errors = {field: [str(e) for e in errs] for field, errs in form.errors.items()}
            return JsonResponse({"errors": errors}, status=400)
        return render(
            request, "chat/room.html", _room_context(request, room_obj, form), status=400
        )
    with transaction.atomic():
        message = Message.objects.create(
            room=room_obj, user=request.user, text=form.cleaned_data["text"]
        )
        data = message.as_dict()
        try:
            # A savepoint: a failed write inside publish (the outbox row) that publish turns into
            # RealtimeError must not leave the message's transaction marked for rollback.
            with transaction.atomic():
                realtime.publish(room_obj.channel(), data)
        except realtime.RealtimeError:
            # Not a reason to roll back: the message is saved, clients fill the gap from the DB.
            logger.warning("message %s saved but not broadcast", message.pk)
        with transaction.atomic():  # a savepoint, like publish's; failures are logged inside
            activity.announce_activity(message)
    if json_mode:
        return JsonResponse({"message": data}, status=201)
    return redirect(
        with_transport_query(reverse("chat:room", kwargs={"name": room_obj.name}), request)
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
