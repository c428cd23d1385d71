"""JSON endpoints issuing JWTs for the logged-in user (see chat.tokens).

- ``GET /chat/token/`` -> ``200 {"token": "<connection JWT>"}``
- ``GET /chat/token/subscription/?channel=rooms:<name>`` -> ``200 {"token": "<subscription
  JWT>"}``; ``400 {"error": ...}`` for a missing/malformed channel, ``404`` for an unknown room,
  ``403`` if the room's access level refuses the user (``Room.allows``). In
  CHAT_CENTRIFUGO_CLIENT_AUTH=jwt mode the browser asks for one for every room whose level is
  not ``users`` (page config ``needsSubscriptionToken``).
- Both: ``503 {"error": "token authentication is disabled (CHAT_JWT_SECRET is not set)"}``
  without a secret; anonymous users are redirected to the login page (login_required).
"""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import tokens
from .models import Room, room_name_from_channel

DISABLED = "token authentication is disabled (CHAT_JWT_SECRET is not set)"


def _disabled() -> JsonResponse:
    return JsonResponse({"error": DISABLED}, status=503)


@never_cache
@login_required
@require_GET
def connection_token(request: HttpRequest) -> JsonResponse:
    """Connection token: claims ``sub`` = str(user.pk), ``exp`` = now + CHAT_JWT_TTL."""
    try:
        return JsonResponse({"token": tokens.connection_token(request.user)})
    except tokens.TokensDisabled:
        return _disabled()


@never_cache
@login_required
@require_GET
def subscription_token(request: HttpRequest) -> JsonResponse:
    """Subscription token for ``?channel=rooms:<name>`` if the room's access level admits the user."""
    channel = request.GET.get("channel", "")
    name = room_name_from_channel(channel)
    if name is None:
        return JsonResponse({"error": "channel must look like rooms:<name>"}, status=400)
    room = Room.objects.filter(name=name).first()
    if room is None:
        return JsonResponse({"error": "unknown room"}, status=404)
    if not room.allows(request.user):
        return JsonResponse({"error": "permission denied"}, status=403)
    try:
        return JsonResponse({"token": tokens.subscription_token(request.user, channel)})
    except tokens.TokensDisabled:
        return _disabled()
