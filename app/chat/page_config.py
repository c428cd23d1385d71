"""The JSON configuration the pages embed for their scripts (json_script): which realtime
transport a page uses and how to reach it.

- :func:`client_config`: shared by the room page (``#chat-config``, chat.js) and the index page
  (``#rooms-config``, rooms.js); both build their Centrifugo client with
  static/chat/centrifugo-client.js from it.
- :func:`room_config`: the room page's, which adds the room's channel and URLs.

Centrifugo transports (centrifuge-js 5.8 takes an array of ``{transport, endpoint}`` and tries
them in order until one has ever opened; http_stream and sse are bidirectional emulation, whose
client-to-server half goes to the emulation endpoint:
https://centrifugal.dev/docs/transports/overview, https://centrifugal.dev/docs/transports/http_stream,
https://centrifugal.dev/docs/transports/sse). Endpoints are same-origin paths; the websocket one
is made absolute (``ws(s)://host/...``) by the browser script, because older browsers refuse a
relative WebSocket URL.
"""
from __future__ import annotations

import posixpath
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.http.request import split_domain_port
from django.urls import reverse

from . import realtime
from .models import Room

TRANSPORTS = ("centrifugo", "channels")
#: Same-origin path of the Channels WebSocket that carries a user's notifications (chat.routing).
NOTIFICATIONS_PATH = "/ws/user/"


def page_transport(request: HttpRequest) -> str:
    """The realtime transport a page uses: ``"centrifugo"`` or ``"channels"``.

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


def websocket_endpoint(request: HttpRequest | None = None) -> str:
    """Where the page opens Centrifugo's WebSocket: CHAT_WEBSOCKET_PATH on the page's origin, or, with
    CHAT_CENTRIFUGO_WEBSOCKET_PORT set (the stack's l4 mode), ``wss://<the request's host name>:<port><path>``:
    the same host name, so the session cookie still reaches Centrifugo's connect proxy (cookies are not
    isolated by port, RFC 6265 section 8.5). Without a request (or a port) the path alone."""
    port = settings.CHAT_CENTRIFUGO_WEBSOCKET_PORT
    if not port or request is None:
        return settings.CHAT_WEBSOCKET_PATH
    hostname, _ = split_domain_port(request.get_host())
    if ":" in hostname and not hostname.startswith("["):  # an IPv6 literal without its brackets
        hostname = f"[{hostname}]"
    return f"wss://{hostname}:{port}{settings.CHAT_WEBSOCKET_PATH}"


def centrifugo_transports(request: HttpRequest | None = None) -> list[dict[str, str]]:
    """``[{"transport": name, "endpoint": path}, ...]`` for CHAT_CENTRIFUGO_TRANSPORTS, in that
    order: ``websocket`` -> :func:`websocket_endpoint`; ``http_stream`` / ``sse`` -> the directory of
    CHAT_WEBSOCKET_PATH + ``/<name>`` (default ``/connection/http_stream``,
    ``/connection/sse``), on the page's origin."""
    base = posixpath.dirname(settings.CHAT_WEBSOCKET_PATH.rstrip("/")) or "/"
    return [
        {
            "transport": name,
            "endpoint": websocket_endpoint(request) if name == "websocket" else posixpath.join(base, name),
        }
        for name in settings.CHAT_CENTRIFUGO_TRANSPORTS
    ]


def client_config(request: HttpRequest) -> dict[str, Any]:
    """The realtime part every page's config shares:

    ``backend`` CHAT_REALTIME_BACKEND; ``transport`` the page's (page_transport);
    ``clientAuth`` CHAT_CENTRIFUGO_CLIENT_AUTH (``proxy`` | ``jwt``); ``tokenUrl`` the connection
    token URL (jwt); ``websocketPath`` websocket_endpoint(); ``transports`` centrifugo_transports();
    ``emulationEndpoint`` CHAT_CENTRIFUGO_EMULATION_PATH; ``personalChannel`` the user's
    Centrifugo personal channel ``<ns>:#<pk>``; ``notificationsPath`` ``/ws/user/`` (Channels).
    """
    return {
        "backend": settings.CHAT_REALTIME_BACKEND,
        "transport": page_transport(request),
        "clientAuth": settings.CHAT_CENTRIFUGO_CLIENT_AUTH,
        "tokenUrl": reverse("chat:token"),
        "websocketPath": websocket_endpoint(request),
        "transports": centrifugo_transports(request),
        "emulationEndpoint": settings.CHAT_CENTRIFUGO_EMULATION_PATH,
        "personalChannel": realtime.personal_channel(request.user),
        "notificationsPath": NOTIFICATIONS_PATH,
    }


def room_config(request: HttpRequest, room_obj: Room) -> dict[str, Any]:
    """The room page's config (``#chat-config``, chat.js): client_config() plus

    ``channel`` Centrifugo channel ``rooms:<name>``; ``channelsPath`` Channels WebSocket path;
    ``needsSubscriptionToken`` bool, access level other than ``users`` (jwt: the subscription
    takes a token from ``subscriptionTokenUrl``); ``subscriptionTokenUrl``; ``presenceUrl``
    chat.presence_views; ``messagesUrl`` the room's messages URL (GET: the gap fill);
    ``readUrl`` POST the read mark (chat.membership_views); ``presenceTtl`` CHAT_PRESENCE_TTL
    seconds (Channels heartbeats every TTL/2); ``username``; ``maxLength``
    CHAT_MESSAGE_MAX_LENGTH.
    """
    return {
        **client_config(request),
        "channel": room_obj.channel(),
        "channelsPath": channels_path(room_obj),
        "needsSubscriptionToken": room_obj.access != "users",
        "subscriptionTokenUrl": reverse("chat:subscription_token"),
        "presenceUrl": reverse("chat:presence", kwargs={"name": room_obj.name}),
        "messagesUrl": reverse("chat:messages", kwargs={"name": room_obj.name}),
        "readUrl": reverse("chat:read", kwargs={"name": room_obj.name}),
        "presenceTtl": settings.CHAT_PRESENCE_TTL,
        "username": request.user.get_username(),
        "maxLength": settings.CHAT_MESSAGE_MAX_LENGTH,
    }
