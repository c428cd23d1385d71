"""What the drills share besides the load: bounded waits, health checks, Redis Sentinel
queries and the figures report. Addresses and ports come from the stack manifest."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import redis
import redis.sentinel
import requests
from cent import HistoryRequest

from rtclient.auth import read_credential
from rtclient.hosts import exec_in
from rtclient.publish import first_answer
from rtclient.manifest import Endpoint, Manifest


def run(loop: asyncio.AbstractEventLoop, coro):
    """Run ``coro`` to completion on the drills' one event loop (the load's connections live there)."""
    return loop.run_until_complete(coro)


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 1.0, what: str = "condition",
               loop: asyncio.AbstractEventLoop | None = None) -> Any:
    """Poll ``predicate`` every ``interval`` s until it returns a true value (exceptions count as
    false) and return it. Raises AssertionError naming ``what`` after ``timeout`` seconds.

    With ``loop`` (the drills' event loop, where the load's clients live), each call of ``predicate``
    runs in a worker thread and the pauses are the loop's: the clients keep reading, answering pings and
    reconnecting during the wait instead of stalling for its whole length (a drain or restart takes
    seconds). ``predicate`` must then not touch the load."""
    def attempt() -> Any:
        try:
            return predicate()
        except Exception:  # noqa: BLE001 - not yet
            return None

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = blocking(loop, attempt) if loop is not None else attempt()
        if value:
            return value
        if loop is not None:
            run(loop, asyncio.sleep(interval))
        else:
            time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def blocking(loop: asyncio.AbstractEventLoop, function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` (a Docker command, a playbook run) in a worker thread while the drills' loop
    runs the load; its result, or its exception raised here."""
    return run(loop, asyncio.to_thread(function, *args))


def http_ok(url: str) -> bool:
    """Whether GET ``url`` answers 200 within 2 seconds (raises requests errors otherwise)."""
    return requests.get(url, timeout=2).status_code == 200


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


def unit_active(host: str, unit: str) -> bool:
    """Whether systemd on test host ``host`` reports ``unit`` active."""
    return exec_in(host, ["systemctl", "is-active", unit], check=False).stdout.strip() == "active"


#: The nftables table the node-cut drill adds on a Centrifugo host (removed afterwards).
CUT_TABLE = "rtstack_drill_cut"


def cut_from_redis(host: str, manifest: Manifest) -> list[str]:
    """Drop every packet from ``host`` to the Redis servers' and the sentinels' ports (an nftables
    output chain of its own, inside the container): the host still reaches everything else. Returns
    the ``address:port`` endpoints cut."""
    endpoints = [f"{item.address}:{item.port}" for item in (*manifest.redis.servers, *manifest.redis.sentinels)]
    rules = [f"add table inet {CUT_TABLE}",
             f"add chain inet {CUT_TABLE} out {{ type filter hook output priority -10 ; }}"]
    rules += [f"add rule inet {CUT_TABLE} out ip daddr {item.address} tcp dport {item.port} drop"
              for item in (*manifest.redis.servers, *manifest.redis.sentinels)]
    exec_in(host, ["nft", "-f", "-"], input="\n".join(rules) + "\n")
    return endpoints


def restore_redis_path(host: str) -> None:
    """Undo :func:`cut_from_redis` (nothing to do if it is not there)."""
    exec_in(host, ["nft", "delete", "table", "inet", CUT_TABLE], check=False)


async def history_seqs(api_urls: list[str], api_key: str, channel: str, limit: int = 1000) -> set[int]:
    """The ``seq`` of every publication in ``channel``'s Centrifugo history now (the first node that
    answers the history API, https://centrifugal.dev/docs/server/server_api#history)."""
    request = HistoryRequest(channel=channel, limit=limit, reverse=True)
    result = await first_answer(api_urls, api_key, lambda api: api.history(request), "history", timeout=5)
    return {pub.data["seq"] for pub in result.publications
            if isinstance(pub.data, dict) and isinstance(pub.data.get("seq"), int)}


#: Sentinel log events of a failover, in the order they happen (https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/#sentinel-api).
FAILOVER_EVENTS = ("+sdown", "+odown", "+try-failover", "+elected-leader", "+selected-slave", "+promoted-slave",
                   "+switch-master", "+failover-end")


def sentinel_timeline(manifest: Manifest, since: float) -> list[dict[str, Any]]:
    """The failover events in the sentinels' own logs after the wall-clock time ``since`` (seconds
    since the epoch; the test hosts share this machine's clock), as ``{"sentinel": host, "event":
    "+sdown", "s": seconds after since}``, earliest first; master events only (``+sdown master``)."""
    import datetime

    out = []
    for item in manifest.redis.sentinels:
        log = exec_in(item.host, ["cat", manifest.redis.files["sentinel_log"]], check=False).stdout
        for line in log.splitlines():
            parts = line.split(" ", 7)
            if len(parts) < 8 or parts[6] not in FAILOVER_EVENTS:
                continue
            if parts[6] == "+sdown" and not parts[7].startswith("master"):
                continue
            try:
                at = datetime.datetime.strptime(" ".join(parts[1:5]), "%d %b %Y %H:%M:%S.%f").replace(
                    tzinfo=datetime.timezone.utc).timestamp()
            except ValueError:
                continue
            if at >= since:
                out.append({"sentinel": item.host, "event": parts[6], "s": round(at - since, 3)})
    return sorted(out, key=lambda event: event["s"])
