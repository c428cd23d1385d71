"""What the drills share besides the load: bounded waits, health checks, Redis Sentinel
queries and the figures report. Addresses and ports come from the stack manifest."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import redis
import redis.sentinel
import requests

from rtclient.auth import read_credential
from rtclient.manifest import Endpoint, Manifest

from .load import Load


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 1.0, what: str = "condition") -> Any:
    """Poll ``predicate`` every ``interval`` s until it returns a true value (exceptions count as
    false) and return it. Raises AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - not yet
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def http_ok(url: str) -> bool:
    """Whether GET ``url`` answers 200 within 2 seconds (raises requests errors otherwise)."""
    return requests.get(url, timeout=2).status_code == 200


def run(loop: asyncio.AbstractEventLoop, coro):
    """Run ``coro`` to completion on the drills' one event loop (the load's connections live there)."""
    return loop.run_until_complete(coro)


async def settle(load: Load, seconds: float) -> None:
    """Publish for ``seconds`` with nothing broken (the window's first messages)."""
    load.start_publishing()
    await asyncio.sleep(seconds)


def report(figures: dict, drill: str, **values: Any) -> None:
    """Keep one drill's figures (written to build/ha-drills.json at the end) and print them."""
    figures[drill] = values
    print(f"\n[{drill}] " + ", ".join(f"{key}={value}" for key, value in values.items()))


def sentinel_master(manifest: Manifest) -> tuple[str, int]:
    """(address, port) of the Redis master the manifest's sentinels report now.

    Raises:
        redis.sentinel.MasterNotFoundError: no sentinel answered with a master.
    """
    password = read_credential("redis_sentinel_password")
    sentinels = [(item.address, item.port) for item in manifest.redis.sentinels]
    sentinel = redis.sentinel.Sentinel(sentinels, sentinel_kwargs={"password": password, "socket_timeout": 1},
                                       socket_timeout=1)
    return sentinel.discover_master(manifest.redis.sentinel_master_name)


def replica_in_sync(server: Endpoint) -> bool:
    """Whether the Redis ``server`` is a replica whose link to its master is up (ROLE command)."""
    client = redis.Redis(host=server.address, port=server.port, socket_timeout=2,
                         password=read_credential("redis_requirepass"), decode_responses=True)
    role = client.role()
    return role[0] == "slave" and role[3] == "connected"
