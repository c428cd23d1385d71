"""Who a session is logged in as, with ``SECRET_KEY_FALLBACKS`` honoured and the session's key never cycled:
for page views (:class:`AuthenticationMiddleware`) and for requests whose response never reaches the
browser's cookie jar: Channels' WebSocket handshake and Centrifugo's connect proxy call (Centrifugo forwards
the browser's Cookie header, then drops Django's response headers).

Django's own ``django.contrib.auth.get_user`` (5.2, django/contrib/auth/__init__.py) checks the session's
auth hash against the current ``SECRET_KEY`` and then each of ``SECRET_KEY_FALLBACKS``; on a fallback match
it cycles the session key (``session.cycle_key()``: the old key is deleted from the store) and relies on the
response's Set-Cookie to hand the browser the new one. On these two paths nothing hands it over, so the
browser would keep a deleted session: logged out of HTTP too, right after a ``SECRET_KEY`` rotation.
Channels' ``channels.auth.get_user`` (4.3) is worse: it checks the current key only and flushes the session
otherwise. :func:`user_from_session` verifies like Django, fallbacks included, and never cycles nor flushes.

Page views too: a key cycle deletes the old session key, so every request already on its way with it (a
browser's parallel requests, a WebSocket reconnecting) finds no session and is logged out; and while a
rotation rolls over the Django hosts one at a time, a session goes back and forth between hosts that sign
with different keys, cycling on each. :class:`AuthenticationMiddleware` (Django's, with
:func:`request_user`) re-signs the session's hash with the current key in place instead: same session key,
nothing to race. Logging in still cycles the key (``django.contrib.auth.login``: session fixation).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from channels.auth import AuthMiddleware
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model, load_backend
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.auth.models import AnonymousUser
from django.utils.crypto import constant_time_compare
from django.utils.functional import SimpleLazyObject


def user_from_session(session: Any) -> Any:
    """The active user ``session`` (a Django ``SessionBase``) is logged in as, or ``AnonymousUser``.

    The session must name a user, an authentication backend of ``settings.AUTHENTICATION_BACKENDS`` and an
    auth hash equal to the user's under ``SECRET_KEY`` or one of ``SECRET_KEY_FALLBACKS``
    (https://docs.djangoproject.com/en/5.2/ref/settings/#secret-key-fallbacks). The session itself is left
    untouched: no key cycle, no flush. Touches the database (run it through ``database_sync_to_async`` in
    async code).
    """
    try:
        user_id = get_user_model()._meta.pk.to_python(session[SESSION_KEY])
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        return AnonymousUser()
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return AnonymousUser()
    user = load_backend(backend_path).get_user(user_id)
    if user is None:
        return AnonymousUser()
    if hasattr(user, "get_session_auth_hash"):
        session_hash = session.get(HASH_SESSION_KEY)
        if not session_hash:
            return AnonymousUser()
        hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
        if not any(constant_time_compare(session_hash, candidate) for candidate in hashes):
            return AnonymousUser()
    return user


def request_user(request: Any) -> Any:
    """``request.user`` of a page view: :func:`user_from_session` of ``request.session`` (cached on the request
    as Django's ``get_user`` does). When the session's hash verified only through ``SECRET_KEY_FALLBACKS``, it
    is re-signed with the current ``SECRET_KEY`` in place (the session is saved with the response; its key
    stays), where Django's ``get_user`` would cycle the key."""
    if not hasattr(request, "_cached_user"):
        user = user_from_session(request.session)
        if user.is_authenticated and hasattr(user, "get_session_auth_hash"):
            current = user.get_session_auth_hash()
            if not constant_time_compare(request.session.get(HASH_SESSION_KEY, ""), current):
                request.session[HASH_SESSION_KEY] = current
        request._cached_user = user
    return request._cached_user


async def _arequest_user(request: Any) -> Any:
    return await sync_to_async(request_user)(request)


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    """Django's ``AuthenticationMiddleware`` with :func:`request_user`: fallbacks honoured, the session's
    key never cycled by a ``SECRET_KEY`` rotation (settings.MIDDLEWARE uses it in place of Django's)."""

    def process_request(self, request: Any) -> None:  # noqa: D102
        super().process_request(request)  # the same check that SessionMiddleware runs first
        request.user = SimpleLazyObject(lambda: request_user(request))
        request.auser = partial(_arequest_user, request)


class SessionAuthMiddleware(AuthMiddleware):
    """Channels' ``AuthMiddleware``, with :func:`user_from_session` instead of ``channels.auth.get_user``
    (which honours no ``SECRET_KEY_FALLBACKS`` and flushes the session). Like Channels', it fills
    ``scope["user"]`` only when an outer middleware (the ``?token=`` JWT one) has not."""

    async def resolve_scope(self, scope: dict[str, Any]) -> None:  # noqa: D102
        scope["user"]._wrapped = await database_sync_to_async(user_from_session)(scope["session"])


def SessionAuthMiddlewareStack(inner: Any) -> Any:  # noqa: N802 - named like Channels' AuthMiddlewareStack
    """Cookies, then the session, then :class:`SessionAuthMiddleware`: Channels' ``AuthMiddlewareStack``
    with the fallback-aware user lookup."""
    return CookieMiddleware(SessionMiddleware(SessionAuthMiddleware(inner)))
