"""A clear answer when the database is down: 503 with ``Retry-After`` instead of a 500 page.

``DatabaseUnavailableMiddleware`` (in MIDDLEWARE right after SecurityMiddleware) turns an
``OperationalError`` / ``InterfaceError`` (django.db; the server is unreachable, the
connection dropped, a failover is in progress) raised by a view -- including the session
and user loading that happens lazily inside views (``request.user``) -- into:

- JSON clients (:func:`wants_json`): ``503 {"error": "database unavailable, try again"}``;
- everyone else: ``503`` with the standalone page ``503.html`` (no base template: rendering
  the signed-in user would need the database).

Both carry ``Retry-After: 5`` (seconds). Other database errors (IntegrityError,
ProgrammingError, ...) are bugs, not outages, and keep Django's normal 500 handling.

Nothing is half-saved: chat.views.post_message creates the message and publishes it in one
``transaction.atomic()`` block, so an outage in the middle rolls the message back and the
client is told to try again.
"""
from __future__ import annotations

import logging
from typing import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

#: Seconds a client should wait before retrying (``Retry-After`` header).
RETRY_AFTER_SECONDS = 5
#: Body of the JSON answer.
JSON_ERROR = {"error": "database unavailable, try again"}
#: Exceptions that mean "the database cannot be reached right now".
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError)


def wants_json(request: HttpRequest) -> bool:
    """True when the client prefers JSON over HTML: its ``Accept`` header ranks
    ``application/json`` above ``text/html`` (e.g. ``Accept: application/json``).

    No ``Accept`` header, ``*/*`` (the default of ``fetch`` and ``requests``) and browsers'
    navigation headers (``text/html,...,*/*;q=0.8``) mean HTML.
    """
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """The 503 answer for ``request``: JSON :data:`JSON_ERROR` or the ``503.html`` page, with
    ``Retry-After`` :data:`RETRY_AFTER_SECONDS`."""
    if wants_json(request):
        response: HttpResponse = JsonResponse(JSON_ERROR, status=503)
    else:
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    """Answer 503 (see the module docstring) for database outages raised by views."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A 503 response for ``UNAVAILABLE_ERRORS``; None (Django's handling) for anything else."""
        if not isinstance(exception, UNAVAILABLE_ERRORS):
            return None
        logger.error(
            "database unavailable during %s %s: %s", request.method, request.path, exception
        )
        return unavailable_response(request)
