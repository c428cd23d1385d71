"""Gap fill from the database, the way the room page does it (chat.js + gapfill.js): the database
is the source of truth, the realtime layer the fast path, so a client that was away asks Django
for every message after the last id it saw.

Django's view (chat.views.messages_after)::

    GET /rooms/<name>/messages/?after=<id>&limit=<n>    (session cookie; Accept: application/json)
    200 {"messages": [{"id": int, "room": str, "user": str, "text": str,
                       "created_at": ISO 8601 str}, ...],   ids > after, ascending, at most limit
         "more": bool}                                      true: ask again with after = last id
    400 {"error": str} bad after/limit; 302 to the login page without a session; 403 staff-only
    room; 404 unknown room; 503 {"error": ...} database unavailable (Retry-After: 5)

:func:`fetch_messages_after` (async, aiohttp) and :func:`fetch_messages_after_sync` (requests)
follow ``more`` page by page; :class:`Pages` is the paging logic both share.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import aiohttp
import requests

from .auth import SessionCookies
from .tls import client_ssl_context

#: Django's messages view of a room (GET: the gap fill; POST: send a message).
MESSAGES_PATH = "/rooms/{room}/messages/"


class GapFillError(RuntimeError):
    """The messages view answered other than 200 with a well-formed page (``status_code``: the
    HTTP status, 200 for a malformed body, None when ``max_pages`` ran out), or the paging did
    not advance."""

    def __init__(self, message: str, url: str = "", status_code: int | None = None) -> None:
        super().__init__(f"{url}: {message}" if url else message)
        self.url, self.status_code = url, status_code


def messages_url(site_url: str, room: str) -> str:
    """``https://host:port`` + ``/rooms/<room>/messages/`` (``room`` percent-encoded; room names
    are ``[a-z0-9_-]`` anyway)."""
    return site_url.rstrip("/") + MESSAGES_PATH.format(room=quote(room, safe=""))


class Pages:
    """Collects a gap fill page by page.

    Args:
        after_id: the last message id the client has (int >= 0; 0: from the start).
        max_pages: most pages to ask for; one page is at most the server's
            CHAT_GAP_FILL_PAGE_SIZE (default 100) messages.

    Use: ``while pages.next_after is not None: pages.add(<JSON body of GET ?after=next_after>)``;
    then ``pages.messages`` (message dicts, ascending by id, each id once).
    """

    def __init__(self, after_id: int, max_pages: int = 50) -> None:
        if not isinstance(after_id, int) or isinstance(after_id, bool) or after_id < 0:
            raise ValueError(f"after_id must be an int >= 0, got {after_id!r}")
        if max_pages < 1:
            raise ValueError(f"max_pages must be >= 1, got {max_pages!r}")
        self.max_pages = max_pages
        self.messages: list[dict[str, Any]] = []
        self.pages = 0
        #: The ``after`` of the next request; None when done.
        self.next_after: int | None = after_id

    def add(self, body: Any, url: str = "") -> None:
        """Take one page's decoded JSON body ``{"messages": [...], "more": bool}``.

        Raises:
            GapFillError: the body is not that shape, its ids are not ascending above the
                requested ``after``, ``more`` is true without messages, or ``more`` is still
                true after ``max_pages`` pages.
        """
        after = self.next_after
        if after is None:
            raise RuntimeError("Pages.add after the last page")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) \
                or not isinstance(body.get("more"), bool):
            raise GapFillError('expected {"messages": [...], "more": bool}', url, 200)
        last = after
        for message in body["messages"]:
            msg_id = message.get("id") if isinstance(message, dict) else None
            if not isinstance(msg_id, int) or msg_id <= last:
                raise GapFillError(f"message ids must ascend above {last}, got {msg_id!r}", url, 200)
            last = msg_id
        self.messages.extend(body["messages"])
        self.pages += 1
        if not body["more"]:
            self.next_after = None
        elif last == after:
            raise GapFillError('"more" is true but the page has no messages', url, 200)
        elif self.pages >= self.max_pages:
            raise GapFillError(f"more than {self.max_pages} pages of messages (stopped after id {last})", url)
        else:
            self.next_after = last


def _check_status(url: str, status: int, text: str) -> None:
    if status != 200:
        raise GapFillError(f"HTTP {status}: {text[:200]}", url, status)


async def fetch_messages_after(site_url: str, room: str, after_id: int, cookie: "str | SessionCookies",
                               ca_file: str | None = None, timeout: float = 5.0,
                               max_pages: int = 50) -> list[dict[str, Any]]:
    """Every message of ``room`` with an id above ``after_id``, from the database (aiohttp).

    Args:
        site_url: the site's origin, e.g. ``"https://127.0.0.1:8443"``.
        room: the room name, e.g. ``"lobby"``.
        after_id: the last message id the client has (0: all).
        cookie: ``Cookie`` header with the Django session (``auth.cookie_header``), or an
            ``auth.SessionCookies``, which then takes the answers' ``Set-Cookie``.
        ca_file: CA bundle of a self-signed ``https://`` site (``auth.ca_file``); None for the
            system's CAs.
        timeout: seconds per request (whole request, connect to body).
        max_pages: most pages to fetch (each at most CHAT_GAP_FILL_PAGE_SIZE messages, 100).

    Returns:
        Message dicts ``{"id", "room", "user", "text", "created_at"}``, ascending by id.

    Raises:
        GapFillError: a non-200 answer (``status_code``; 302 = no valid session, 403/404 room,
            503 database down), a malformed page, or more than ``max_pages`` pages.
        aiohttp.ClientError / asyncio.TimeoutError: the site did not answer.
    """
    url = messages_url(site_url, room)
    pages = Pages(after_id, max_pages)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout), trust_env=False,
                                     cookie_jar=aiohttp.DummyCookieJar()) as session:
        while pages.next_after is not None:
            headers = {"Cookie": str(cookie), "Accept": "application/json"}
            async with session.get(url, params={"after": str(pages.next_after)}, headers=headers,
                                   allow_redirects=False, ssl=client_ssl_context(url, ca_file)) as response:
                if isinstance(cookie, SessionCookies):
                    cookie.update(response.cookies)
                text = await response.text()
                _check_status(url, response.status, text)
                pages.add(_json(text, url), url)
    return pages.messages


def fetch_messages_after_sync(session: requests.Session, site_url: str, room: str, after_id: int,
                              timeout: float = 5.0, max_pages: int = 50) -> list[dict[str, Any]]:
    """:func:`fetch_messages_after` with a logged-in ``requests`` session (``auth.django_login``,
    which also holds the CA setting). Same arguments, result and errors
    (``requests.RequestException`` when the site does not answer)."""
    url = messages_url(site_url, room)
    pages = Pages(after_id, max_pages)
    while pages.next_after is not None:
        response = session.get(url, params={"after": pages.next_after}, timeout=timeout,
                               headers={"Accept": "application/json"}, allow_redirects=False)
        _check_status(url, response.status_code, response.text)
        pages.add(_json(response.text, url), url)
    return pages.messages


def _json(text: str, url: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise GapFillError(f"not JSON: {text[:200]}", url, 200) from None
