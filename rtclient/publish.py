"""Publishers: Centrifugo's server HTTP API through ``cent`` (with failover over several nodes'
API URLs) and the channel layer's ``group_send`` (channels_redis), as the app's ``publish()``
sends on each path, and Django's messages view, as a user posts (:class:`DjangoPoster`). Each has
``await send(data)`` and ``await close()``."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Sequence

import aiohttp
from cent import AsyncClient, InfoRequest, PublishRequest

from .auth import SessionCookies
from .history import messages_url
from .tls import client_ssl_context


class PublishError(RuntimeError):
    """Every Centrifugo API URL refused or failed the publication; ``errors`` maps each URL to
    ``"<ExceptionType>: <message>"``."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("no Centrifugo API accepted the publication: "
                         + "; ".join(f"{url}: {error}" for url, error in errors.items()))
        self.errors = errors


class Publisher:
    """``await publisher.send(data)`` publishes one payload; ``await publisher.close()`` at the end."""

    async def send(self, data: Any) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    async def close(self) -> None:
        return None


class CentrifugoPublisher(Publisher):
    """Publishes into ``channel`` through Centrifugo's server HTTP API
    (https://centrifugal.dev/docs/server/server_api#publish). API publications bypass the
    namespace's publish proxy.

    Args:
        api_urls: one ``http://<address>:<internal_port>/api`` URL or several (the manifest's
            ``api_url`` of each instance); a failed publish is retried on the next URL, and the
            URL that answered is used first next time.
        api_key: the ``X-API-Key`` (credential ``centrifugo_http_api_key``).
        channel: e.g. ``"rooms:lobby"``.
        timeout: seconds per API request.

    The ``cent`` clients are made at the first ``send`` (aiohttp needs the running event loop).
    """

    def __init__(self, api_urls: str | Sequence[str], api_key: str, channel: str, timeout: float = 10.0) -> None:
        self.api_urls = [api_urls] if isinstance(api_urls, str) else list(api_urls)
        if not self.api_urls:
            raise ValueError("CentrifugoPublisher needs at least one API URL")
        self.api_key, self.channel, self.timeout = api_key, channel, timeout
        self._clients: list[AsyncClient] = []
        self._index = 0

    async def send(self, data: Any) -> str:
        """Publish ``data`` (JSON-serialisable); returns the API URL that acknowledged it.

        Raises:
            PublishError: every URL failed (HTTP error, timeout, API error reply).
        """
        if not self._clients:
            self._clients = [AsyncClient(url, self.api_key, timeout=self.timeout) for url in self.api_urls]
        request = PublishRequest(channel=self.channel, data=data)
        errors: dict[str, str] = {}
        for attempt in range(len(self._clients)):
            index = (self._index + attempt) % len(self._clients)
            try:
                await self._clients[index].publish(request)
            except Exception as exc:  # noqa: BLE001 - any failure: try the next node
                errors[self.api_urls[index]] = f"{type(exc).__name__}: {exc}"
                continue
            self._index = index
            return self.api_urls[index]
        raise PublishError(errors)

    async def close(self) -> None:
        for client in self._clients:
            await client.close()
        self._clients = []


class PostError(RuntimeError):
    """Django did not save the message: ``status`` (HTTP status, 0 when there was no answer) and
    ``body`` (the answer's text, or the exception)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:200]}" if status else body)
        self.status, self.body = status, body


def post_headers(site_url: str, csrf_token: str) -> dict[str, str]:
    """The headers a same-origin page sends with a POST to Django, JSON answer asked for:
    ``X-CSRFToken`` (the ``csrftoken`` cookie's value, which Django's CSRF check compares),
    ``Origin`` and ``Referer`` of the site (checked over HTTPS), ``Accept: application/json``."""
    site = site_url.rstrip("/")
    return {"X-CSRFToken": csrf_token, "Accept": "application/json", "Origin": site, "Referer": site + "/"}


def post_message(session: Any, site_url: str, room: str, text: str, timeout: float = 10.0) -> dict[str, Any]:
    """Post one chat message as ``session``'s user (a logged-in ``requests.Session``,
    rtclient.auth.django_login), synchronously: what :class:`DjangoPoster` does, for tests and
    scripts. Returns the saved message (``{"id", "seq", "room", "user", "text", "created_at"}``).

    Raises:
        PostError: any answer but 201 (``status`` and body kept).
    """
    response = session.post(messages_url(site_url, room), data={"text": text}, timeout=timeout,
                            allow_redirects=False,
                            headers=post_headers(site_url, session.cookies.get("csrftoken", "")))
    if response.status_code != 201:
        raise PostError(response.status_code, response.text)
    return response.json()["message"]


class DjangoPoster(Publisher):
    """Sends chat messages as a user does without JavaScript, through the site: POST
    ``/rooms/<room>/messages/`` (Django's messages view, JSON mode: ``Accept: application/json``),
    so every acknowledged message is a committed row of the database, announced on the realtime
    path by the app itself (the outbox with PostgreSQL).

    Args:
        site_url: the site's origin (``https://127.0.0.1:28443``).
        room: e.g. ``"lobby"``.
        cookie: a logged-in user's ``Cookie`` header (``sessionid`` and ``csrftoken``), or an
            ``auth.SessionCookies`` that follows the answers' ``Set-Cookie``;
            csrf_token: that ``csrftoken`` (sent as ``X-CSRFToken``).
        ca_file: CA of a self-signed site; timeout: seconds per request.
    """

    def __init__(self, site_url: str, room: str, cookie: "str | SessionCookies", csrf_token: str, ca_file: str | None = None,
                 timeout: float = 10.0) -> None:
        self.url, self.site_url = messages_url(site_url, room), site_url.rstrip("/")
        # A SessionCookies follows the session's Set-Cookie answers (a SECRET_KEY rotation cycles its key).
        self.cookies = cookie if isinstance(cookie, SessionCookies) else None
        self.headers = {"Cookie": str(cookie), **post_headers(site_url, csrf_token)}
        self.ca_file, self.timeout = ca_file, timeout
        self._session: aiohttp.ClientSession | None = None

    async def send(self, data: Any) -> dict[str, Any]:
        """Post ``data`` (``{"text": str}`` or a str). Returns the saved message
        (``{"id", "seq", "room", "user", "text", "created_at"}``).

        Raises:
            PostError: any answer but 201 (``status``: 503 while the database is down, 400 bad
                text, ...), or no answer within ``timeout`` (``status`` 0).
        """
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout), trust_env=False,
                                                  cookie_jar=aiohttp.DummyCookieJar())
        text = data["text"] if isinstance(data, dict) else str(data)
        try:
            headers = {**self.headers, "Cookie": self.cookies.header()} if self.cookies else self.headers
            async with self._session.post(self.url, data={"text": text}, headers=headers, allow_redirects=False,
                                          ssl=client_ssl_context(self.url, self.ca_file)) as response:
                if self.cookies:
                    self.cookies.update(response.cookies)
                body = await response.text()
                if response.status != 201:
                    raise PostError(response.status, body)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise PostError(0, f"{type(exc).__name__}: {exc}") from exc
        return json.loads(body)["message"]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class ChannelsPublisher(Publisher):
    """The app's ``group_send(group, {"type": "chat.message", "message": data})`` on the Redis
    channel layer (channels_redis, the app's class and prefix).

    Args:
        redis_url: ``redis://<user>:<password>@<address>:<port>/0`` (the app's ACL user
            ``django``; address and port from the manifest's Redis servers).
        group: the room's group, ``chat_room.<room>``.
        layer: the app's channel layer, the manifest's ``channel_layer``: ``"redis"`` (RedisChannelLayer)
            or ``"redis_pubsub"`` (RedisPubSubChannelLayer); a publisher on the other one reaches no consumer.

    Raises:
        ValueError: an unknown ``layer``.
    """

    def __init__(self, redis_url: str, group: str, layer: str = "redis") -> None:
        from channels_redis.core import RedisChannelLayer
        from channels_redis.pubsub import RedisPubSubChannelLayer

        classes = {"redis": RedisChannelLayer, "redis_pubsub": RedisPubSubChannelLayer}
        if layer not in classes:
            raise ValueError(f"channel layer must be one of {', '.join(classes)} (got {layer!r})")
        self.layer, self.group, self.kind = classes[layer](hosts=[{"address": redis_url}]), group, layer

    async def send(self, data: Any) -> None:
        """Broadcast ``data`` as a chat message; raises redis errors when Redis refuses."""
        await self.layer.group_send(self.group, {"type": "chat.message", "message": data})

    async def close(self) -> None:
        """Close the layer's Redis connections: RedisChannelLayer's ``close_pools``; RedisPubSubChannelLayer has none,
        its ``flush`` unsubscribes and closes them."""
        await (self.layer.flush() if self.kind == "redis_pubsub" else self.layer.close_pools())


async def first_answer(api_urls: Sequence[str], api_key: str, call: Any, what: str, timeout: float = 3.0) -> Any:
    """``await call(client)`` with a ``cent.AsyncClient`` of each API URL in turn; the first result.

    Raises:
        RuntimeError: no URL answered (``what`` names the call in the message).
    """
    for url in api_urls:
        async with AsyncClient(url, api_key, timeout=timeout) as api:
            try:
                return await call(api)
            except Exception:  # noqa: BLE001 - ask the next node
                continue
    raise RuntimeError(f"no Centrifugo node answered the {what} API ({', '.join(api_urls)})")


async def node_client_counts(api_urls: Sequence[str], api_key: str, timeout: float = 3.0) -> dict[str, int]:
    """Node name -> connected clients, from the ``info`` server API
    (https://centrifugal.dev/docs/server/server_api#info) of the first URL that answers. Nodes
    share these counts every few seconds, so a fresh connection may not be counted yet.

    Raises:
        RuntimeError: no URL answered.
    """
    result = await first_answer(api_urls, api_key, lambda api: api.info(InfoRequest()), "info", timeout)
    return {item.name: item.num_clients for item in result.nodes}
