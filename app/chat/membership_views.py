"""Membership endpoints of a room (chat.membership), login required (anonymous: redirect to the
login page), POST only (405 otherwise), CSRF-protected (a form's ``csrfmiddlewaretoken`` or the
``X-CSRFToken`` header):

- ``POST /rooms/<name>/join/``: become a member (the room page's ``#join-room`` button); 302 to
  the room page (keeping ``?transport=channels``).
- ``POST /rooms/<name>/leave/``: stop being one (``#leave-room``); 302 to the index page.
- ``POST /rooms/<name>/read/`` with JSON ``{"seq": int}`` or form field ``seq``: move the read
  mark forward to ``seq`` (capped at the room's last message; never backwards; nothing for a
  non-member); 204. 400 ``{"error": ...}`` for a missing or bad ``seq``. The room page's
  readmark.js calls it when live messages arrive while the tab is visible.

All three: 404 unknown room, 403 when the room's access level refuses the user (chat.views.
allowed_room).
"""
from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from . import membership
from .views import allowed_room, with_transport_query

_MAX_SEQ = 2**63 - 1  # BigIntegerField


@login_required
@require_POST
def join_room(request: HttpRequest, name: str) -> HttpResponse:
    """Make the user a member of room ``name``, then back to the room page."""
    room_obj = allowed_room(request, name)
    membership.join(room_obj, request.user)
    return redirect(with_transport_query(reverse("chat:room", kwargs={"name": room_obj.name}), request))


@login_required
@require_POST
def leave_room(request: HttpRequest, name: str) -> HttpResponse:
    """End the user's membership of room ``name``, then to the index page."""
    room_obj = allowed_room(request, name)
    membership.leave(room_obj, request.user)
    return redirect(with_transport_query(reverse("chat:index"), request))


def _seq(request: HttpRequest) -> int | None:
    """``seq`` from a JSON object body (``Content-Type: application/json``) or the form: an int
    in [0, 2**63 - 1] (JSON: an integer, not a bool; form: decimal digits); None otherwise."""
    value: Any
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            return None
        value = body.get("seq") if isinstance(body, dict) else None
        if isinstance(value, bool) or not isinstance(value, int):
            return None
    else:
        raw = request.POST.get("seq", "")
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
            return None
        value = int(raw)
    return value if 0 <= value <= _MAX_SEQ else None


@never_cache
@login_required
@require_POST
def mark_read(request: HttpRequest, name: str) -> HttpResponse:
    """Move the user's read mark of room ``name`` forward to the posted ``seq``; 204."""
    room_obj = allowed_room(request, name)
    seq = _seq(request)
    if seq is None:
        return JsonResponse({"error": "seq must be a non-negative integer (a message seq)"}, status=400)
    membership.mark_read(room_obj, request.user, seq)
    return HttpResponse(status=204)
