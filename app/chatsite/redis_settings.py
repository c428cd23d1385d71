"""The Redis settings of chatsite.settings: where the Django Channels layer and the presence sets
(chat.presence) find Redis, and which channel layer runs on it.

Redis is given in one of three forms:

- ``CHANNELS_REDIS_URL=redis://user:pw@10.0.0.3:6379/0``: one server;
- ``CHANNELS_REDIS_URL=redis://...@10.0.0.3:6379/0,redis://...@10.0.0.4:6379/0``: shards. channels_redis
  spreads channels and groups over all of them (consistent hashing of their names); presence uses the first;
- ``CHAT_REDIS_SENTINELS=10.0.0.3:26379,10.0.0.4:26379,...``: Redis Sentinel. The clients ask the sentinels
  for the master named ``CHAT_REDIS_SENTINEL_MASTER``, with ``CHAT_REDIS_SENTINEL_PASSWORD`` (the sentinels'
  password, may be empty), and log in to the master as ``CHAT_REDIS_USERNAME`` / ``CHAT_REDIS_PASSWORD`` (the
  app's ACL user); they follow a failover.

Nothing set: the in-memory layer, which only works within one process (tests, development). Every bad
value raises ImproperlyConfigured naming the variable and the fix.
"""
from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from chatsite.env import env_list

#: The channel layers on Redis (https://github.com/django/channels_redis), by the name CHAT_CHANNEL_LAYER takes:
#: "redis", RedisChannelLayer (a list per channel, BLPOP-ed, and a sorted set per group, both with expiry), or
#: "redis_pubsub", RedisPubSubChannelLayer (Redis PUB/SUB: one PUBLISH per group_send, no per-member writes;
#: messages published while a process is cut off from Redis are not delivered to it). Chat messages are stored
#: first either way; a Channels client fills a gap from the database.
CHANNEL_LAYER_BACKENDS = {
    "redis": "channels_redis.core.RedisChannelLayer",
    "redis_pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}

#: The variables that only apply with CHAT_REDIS_SENTINELS.
SENTINEL_SETTINGS = (
    "CHAT_REDIS_SENTINEL_MASTER", "CHAT_REDIS_SENTINEL_PASSWORD", "CHAT_REDIS_USERNAME", "CHAT_REDIS_PASSWORD",
)


def sentinel_address(item: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) of CHAT_REDIS_SENTINELS -> ``(host, port)``.

    Raises:
        ImproperlyConfigured: not a host and a TCP port (1-65535).
    """
    host, sep, port = item.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ImproperlyConfigured(
            f"CHAT_REDIS_SENTINELS must be comma-separated host:port pairs "
            f"(e.g. 10.0.0.3:26379,10.0.0.4:26379), got {item!r}"
        )
    return host, int(port)


def redis_sentinel() -> dict | None:
    """Sentinel mode from the environment: ``{"sentinels": [(host, port)], "master_name", "sentinel_kwargs"
    (connection options of the sentinel clients: 2 s timeouts, the sentinels' password), "username",
    "password"}``, or None without CHAT_REDIS_SENTINELS.

    Raises:
        ImproperlyConfigured: both CHANNELS_REDIS_URL and CHAT_REDIS_SENTINELS, sentinels without a master name,
            or a sentinel-only variable without sentinels.
    """
    sentinels = [sentinel_address(item) for item in env_list("CHAT_REDIS_SENTINELS")]
    if not sentinels:
        stray = [name for name in SENTINEL_SETTINGS if os.environ.get(name)]
        if stray:
            raise ImproperlyConfigured(
                f"{', '.join(stray)} only apply with CHAT_REDIS_SENTINELS (Redis Sentinel); set it, or remove "
                "them and give the user and password in CHANNELS_REDIS_URL"
            )
        return None
    if os.environ.get("CHANNELS_REDIS_URL", "").strip():
        raise ImproperlyConfigured(
            "Set either CHANNELS_REDIS_URL (one Redis, or shards) or CHAT_REDIS_SENTINELS (Redis Sentinel), not both"
        )
    master_name = os.environ.get("CHAT_REDIS_SENTINEL_MASTER", "").strip()
    if not master_name:
        raise ImproperlyConfigured(
            "CHAT_REDIS_SENTINELS is set but CHAT_REDIS_SENTINEL_MASTER is not: give the name the sentinels "
            "monitor the master under (the redis role's redis_sentinel_master_name, e.g. rtstack)"
        )
    sentinel_kwargs: dict = {"socket_connect_timeout": 2, "socket_timeout": 2}
    if os.environ.get("CHAT_REDIS_SENTINEL_PASSWORD"):
        sentinel_kwargs["password"] = os.environ["CHAT_REDIS_SENTINEL_PASSWORD"]
    return {
        "sentinels": sentinels,
        "master_name": master_name,
        "sentinel_kwargs": sentinel_kwargs,
        "username": os.environ.get("CHAT_REDIS_USERNAME") or None,
        "password": os.environ.get("CHAT_REDIS_PASSWORD") or None,
    }


def channel_layers(layer: str, urls: str, sentinel: dict | None, max_connections: int) -> dict:
    """Django's CHANNEL_LAYERS setting.

    Args:
        layer: a key of CHANNEL_LAYER_BACKENDS (CHAT_CHANNEL_LAYER).
        urls: CHANNELS_REDIS_URL, one ``redis://``, ``rediss://`` or ``unix://`` URL or several separated by commas.
        sentinel: what :func:`redis_sentinel` returned.
        max_connections: the cap of each Redis connection pool (CHANNELS_REDIS_MAX_CONNECTIONS).

    Returns:
        ``{"default": {"BACKEND", "CONFIG": {"hosts": [...]}}}``: with sentinels, one host with the master name
        (channels_redis.utils.create_pool makes a SentinelConnectionPool of it); else one host per URL, passed to
        redis.asyncio.ConnectionPool.from_url with max_connections. Neither: the in-memory layer.

    Raises:
        ImproperlyConfigured: an unknown layer, or a URL of another scheme.
    """
    if layer not in CHANNEL_LAYER_BACKENDS:
        raise ImproperlyConfigured(
            f"CHAT_CHANNEL_LAYER must be one of {', '.join(CHANNEL_LAYER_BACKENDS)}, got {layer!r}"
        )
    addresses = [item.strip() for item in urls.split(",") if item.strip()]
    for url in addresses:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ImproperlyConfigured(
                "CHANNELS_REDIS_URL must be one redis://, rediss:// or unix:// URL, or several separated "
                f"by commas (one per shard), got an item starting with {url.split(':', 1)[0]!r}"
            )
    if sentinel:
        hosts: list[dict] = [{**sentinel, "max_connections": max_connections}]
    else:
        hosts = [{"address": url, "max_connections": max_connections} for url in addresses]
    if not hosts:
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return {"default": {"BACKEND": CHANNEL_LAYER_BACKENDS[layer], "CONFIG": {"hosts": hosts}}}
