"""Room presence for the Channels path: who is connected to a room right now.

Storage: one Redis sorted set per room, key ``chat:presence:<room>``, member = username,
score = expiry as Unix time in seconds (now + ``settings.CHAT_PRESENCE_TTL``, default 60).
Entries are refreshed on connect and on every message/heartbeat, removed on disconnect, and
stale ones are dropped (ZREMRANGEBYSCORE) before reading. Redis is reached with
``redis.asyncio``: through Redis Sentinel when ``settings.CHAT_REDIS_SENTINEL`` is set (the master
the sentinels name, followed across a failover), else at ``settings.CHANNELS_REDIS_URL`` (with
several comma-separated shard URLs, the first); without either an in-process dict is used
(single-process tests/development only). Redis errors propagate (``redis.RedisError``; no
master known to the sentinels: ``redis.asyncio.sentinel.MasterNotFoundError``).

A username is one member: with two tabs in the same room, closing one removes the user until
the other refreshes (next message/heartbeat).

Synchronous callers (the presence view, chat.presence_views) use
``async_to_sync(members)(room, private_connection=True)``: outside an ASGI server
async_to_sync runs each call on a new event loop, and a per-loop client cached for it would
leave its connections open after that loop is gone.
"""
from __future__ import annotations

import time
import weakref
from asyncio import AbstractEventLoop, get_running_loop

from django.conf import settings
from redis import asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

_local: dict[str, dict[str, float]] = {}
# Redis clients are bound to the event loop that created their connections.
_clients: "weakref.WeakKeyDictionary[AbstractEventLoop, aioredis.Redis]" = weakref.WeakKeyDictionary()


def _key(room: str) -> str:
    return f"chat:presence:{room}"


def _configured() -> bool:
    return bool(getattr(settings, "CHAT_REDIS_SENTINEL", None) or settings.CHANNELS_REDIS_URL)


def _connect() -> tuple[aioredis.Redis, Sentinel | None]:
    """A new client of the presence Redis, and the Sentinel manager behind it (None without Sentinel).

    Sentinel: ``Sentinel(sentinels, sentinel_kwargs=...).master_for(master_name, ...)``, whose pool
    asks the sentinels for the master on connect and after a failover. The caller closes both.
    """
    sentinel = getattr(settings, "CHAT_REDIS_SENTINEL", None)
    if sentinel:
        manager = Sentinel(sentinel["sentinels"], sentinel_kwargs=sentinel["sentinel_kwargs"])
        client = manager.master_for(
            sentinel["master_name"],
            username=sentinel["username"],
            password=sentinel["password"],
            decode_responses=True,
        )
        return client, manager
    url = settings.CHANNELS_REDIS_URL.split(",")[0].strip()
    return aioredis.from_url(url, decode_responses=True), None


def _redis() -> aioredis.Redis | None:
    if not _configured():
        return None
    loop = get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = _connect()[0]
    return client


async def touch(room: str, username: str) -> None:
    """Mark ``username`` present in ``room`` until now + CHAT_PRESENCE_TTL seconds."""
    ttl = settings.CHAT_PRESENCE_TTL
    expiry = time.time() + ttl
    client = _redis()
    if client is None:
        _local.setdefault(room, {})[username] = expiry
        return
    async with client.pipeline(transaction=True) as pipe:
        pipe.zadd(_key(room), {username: expiry})
        pipe.expire(_key(room), ttl * 2)  # an abandoned room's set disappears on its own
        await pipe.execute()


async def leave(room: str, username: str) -> None:
    """Remove ``username`` from ``room``'s presence."""
    client = _redis()
    if client is None:
        _local.get(room, {}).pop(username, None)
        return
    await client.zrem(_key(room), username)


async def members(room: str, *, private_connection: bool = False) -> list[str]:
    """Usernames present in ``room`` (score > now), sorted by name.

    ``private_connection=True``: use a Redis client of its own, closed before returning,
    instead of the per-event-loop cached one (for short-lived loops such as async_to_sync's).
    """
    now = time.time()
    if not _configured():
        entries = _local.get(room, {})
        for name in [n for n, exp in entries.items() if exp <= now]:
            del entries[name]
        return sorted(entries)
    if not private_connection:
        return await _read_members(_redis(), room, now)
    client, manager = _connect()
    try:
        return await _read_members(client, room, now)
    finally:
        await client.aclose()
        if manager is not None:
            await manager.aclose()


async def _read_members(client: aioredis.Redis, room: str, now: float) -> list[str]:
    async with client.pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(_key(room), "-inf", now)
        pipe.zrangebyscore(_key(room), f"({now}", "+inf")
        _, names = await pipe.execute()
    return sorted(names)
