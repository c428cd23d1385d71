"""ASGI middleware: WebSocket authentication by ``?token=<JWT>`` for non-browser clients.

The token is a connection token from ``/chat/token/`` (chat.tokens: HS256 with
CHAT_JWT_SECRET, ``sub`` = user pk, ``exp`` checked). Behaviour per WebSocket connection:

- no ``token`` query parameter: passed through unchanged; the session cookie
  (chat.session_auth.SessionAuthMiddlewareStack, inside) decides ``scope["user"]``.
- valid token of an active user: ``scope["user"]`` = that user, which the session stack inside
  keeps (channels.auth.AuthMiddleware only fills ``scope["user"]`` when it is absent).
- anything else (bad signature, expired, malformed, unknown/inactive user, empty
  CHAT_JWT_SECRET): the handshake is accepted and the socket closed with code 4001, so the
  client sees the code (closing before accept would surface only as an HTTP 403).

Non-WebSocket scopes pass through untouched.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import jwt
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth import get_user_model

from . import tokens

CLOSE_UNAUTHORIZED = 4001


def _token_from_query(query_string: bytes) -> str | None:
    values = parse_qs(query_string.decode("latin-1"), keep_blank_values=True).get("token")
    return values[-1] if values else None


@database_sync_to_async
def _user_for_token(token: str) -> Any | None:
    try:
        pk = tokens.user_pk_from_token(token)
    except (jwt.InvalidTokenError, tokens.TokensDisabled):
        return None
    return get_user_model().objects.filter(pk=pk, is_active=True).first()


async def _reject(receive: Any, send: Any, code: int) -> None:
    """Complete the handshake, then close with ``code``."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": code})


class JwtQueryAuthMiddleware(BaseMiddleware):
    """Wrap an ASGI app (normally SessionAuthMiddlewareStack(URLRouter(...)))."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            return await self.inner(scope, receive, send)
        token = _token_from_query(scope.get("query_string", b""))
        if token is None:
            return await self.inner(scope, receive, send)
        user = await _user_for_token(token)
        if user is None:
            await _reject(receive, send, CLOSE_UNAUTHORIZED)
            return None
        return await super().__call__({**scope, "user": user}, receive, send)
