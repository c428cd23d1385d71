"""HS256 JSON Web Tokens (PyJWT) signed with ``settings.CHAT_JWT_SECRET``.

- Connection token (Centrifugo ``client.token.hmac_secret_key``, and ``?token=`` on the
  Channels WebSocket): claims ``{"sub": "<user pk>", "exp": <unix seconds>}``
  (https://centrifugal.dev/docs/server/authentication).
- Subscription token (Centrifugo private channels): ``{"sub": "<user pk>",
  "channel": "rooms:<name>", "exp": <unix seconds>}``
  (https://centrifugal.dev/docs/server/channel_token_auth).

``exp`` is ``now + settings.CHAT_JWT_TTL`` seconds. Every function raises TokensDisabled
when CHAT_JWT_SECRET is empty.
"""
from __future__ import annotations

import time
from typing import Any

import jwt
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ALGORITHM = "HS256"


class TokensDisabled(ImproperlyConfigured):
    """CHAT_JWT_SECRET is empty: no token may be issued or accepted."""


def _secret() -> str:
    secret = settings.CHAT_JWT_SECRET
    if not secret:
        raise TokensDisabled("CHAT_JWT_SECRET is not set; token authentication is disabled")
    return secret


def _encode(claims: dict[str, Any]) -> str:
    secret = _secret()
    claims = {**claims, "exp": int(time.time()) + settings.CHAT_JWT_TTL}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def connection_token(user: Any) -> str:
    """Connection JWT for ``user``: ``{"sub": str(user.pk), "exp": now + CHAT_JWT_TTL}``."""
    return _encode({"sub": str(user.pk)})


def subscription_token(user: Any, channel: str) -> str:
    """Subscription JWT: ``{"sub": str(user.pk), "channel": channel, "exp": now + TTL}``.
    The caller checks that ``user`` may enter the channel's room."""
    return _encode({"sub": str(user.pk), "channel": channel})


def user_pk_from_token(token: str) -> int:
    """Verify a connection token (HS256 signature by CHAT_JWT_SECRET or, during a key rotation, one of
    CHAT_JWT_PREVIOUS_SECRETS; required ``exp`` not in the past; ``sub`` a decimal user pk) and return
    the pk as int. The same keys Centrifugo accepts (client.token.hmac_secret_key and
    hmac_previous_secret_key, https://centrifugal.dev/docs/server/authentication).

    Raises ``jwt.InvalidTokenError`` (``jwt.ExpiredSignatureError`` when expired, ``jwt.InvalidSignatureError``
    when no key signed it) for a bad token, TokensDisabled when no secret is configured.
    """
    keys = [_secret(), *(key for key in settings.CHAT_JWT_PREVIOUS_SECRETS if key)]
    for index, key in enumerate(keys):
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
            break
        except jwt.InvalidSignatureError:
            if index == len(keys) - 1:
                raise
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub.isdigit():
        raise jwt.InvalidTokenError("sub must be a user pk as a decimal string")
    return int(sub)
