"""A capacity model: hosts per tier for a load, from the per-CPU and per-connection figures a benchmark
measured (``python -m bench.capacity [results.json]``, default bench/results/latest.json; writes nothing),
and a check of one point of it on the deployed stack (``--check``: the model's prediction of CPU and memory
for ``--check-connections`` clients in rooms of 1000 at ``--check-rate`` messages per second per room, next to
what the stack used).

The load: ``connections`` clients in rooms of ``members`` (1000), each room getting ``rate`` messages per
second. Then:

- publications per second ``P = connections / members * rate``; deliveries per second ``D = connections * rate``
  (every member gets every message of its room);
- Centrifugo CPU = ``D / (deliveries per Centrifugo CPU-second) + connections * (idle CPU per connection)``, and
  the same for nginx (TLS and proxying of each delivery; pings and presence refreshes of every connection): the
  deliveries from the fan-out of the Centrifugo path, the idle CPU from its idle-memory step with the most
  connections;
- memory = ``connections * (bytes per idle connection)`` of each tier, from the idle-memory step with the most
  connections;
- Redis: each publication is one PUBLISH (plus its history append), received by every Centrifugo node with a
  member of the room: with rooms of 1000 spread by least_conn, every node. PUB/SUB messages per second
  ``P * (1 + nodes)``, against one Redis's ``REDIS_PUBSUB_PER_SECOND`` (the Centrifugo blog's figure for one
  instance, which one CPU core bounds: https://centrifugal.dev/blog/2026/06/29/scaling-redis-pub-sub; not
  measured here) times ``HEADROOM``. Past one Redis, the ``sharded`` Redis mode spreads channels over isolated
  instances by hash, so shards add up.

Hosts are of ``host_cores`` cores and ``host_memory_gib`` GiB, used up to ``HEADROOM`` (reconnect storms,
failover of a node's clients to the others, GC).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rtclient.publish import CentrifugoPublisher

from .context import BenchContext, add_stack_arguments
from .load import progress, publish_at_rate
from .loadgen import LoadGenerator
from .stack import PATHS, RESTART, ROOT, Stack

#: PUB/SUB messages one Redis instance carries per second (Centrifugo blog, see the module's docstring).
REDIS_PUBSUB_PER_SECOND = 650_000
#: The share of a host's CPU and memory the model plans to use.
HEADROOM = 0.6
#: The loads of the table: connections, and messages per second per room.
CONNECTIONS = (10_000, 100_000, 1_000_000)
RATES = (1, 10, 100)


@dataclass
class Figures:
    """Measured unit costs.

    Attributes:
        centrifugo_deliveries_per_cpu_second: fan-out deliveries per CPU-second of Centrifugo's processes.
        nginx_deliveries_per_cpu_second: the same per CPU-second of nginx's processes (TLS + proxying).
        centrifugo_bytes_per_connection: Centrifugo's resident memory per idle connection, bytes.
        nginx_bytes_per_connection: nginx's resident memory per idle connection, bytes.
        centrifugo_idle_cpu_per_connection: Centrifugo's CPU-seconds per second per idle connection.
        nginx_idle_cpu_per_connection: nginx's CPU-seconds per second per idle connection.
    """

    centrifugo_deliveries_per_cpu_second: float
    nginx_deliveries_per_cpu_second: float
    centrifugo_bytes_per_connection: float
    nginx_bytes_per_connection: float
    centrifugo_idle_cpu_per_connection: float = 0.0
    nginx_idle_cpu_per_connection: float = 0.0

    @classmethod
    def from_results(cls, doc: dict) -> "Figures":
        """The figures of a ``python -m bench`` result document (its Centrifugo path's fan-out and the
        idle-memory step with the most connections). Raises KeyError or ZeroDivisionError when the
        document lacks them."""
        path = doc["paths"]["centrifugo"]
        fanout = path["fanout"]
        cpu = fanout["server_cpu_seconds_by_process"]
        idle = max(path["idle_memory"], key=lambda step: step["connections"])
        memory = idle["above_idle_per_connection_by_process"]
        idle_cpu = idle.get("idle_cpu_per_connection_by_process") or {}
        return cls(fanout["deliveries"] / cpu["centrifugo"], fanout["deliveries"] / cpu["nginx"],
                   memory["centrifugo"], memory["nginx"], idle_cpu.get("centrifugo", 0.0), idle_cpu.get("nginx", 0.0))


@dataclass
class Sizing:
    """Hosts per tier for one load, and the figures they come from (per second, cores, GiB)."""

    connections: int
    rate: float
    publications_per_second: float
    deliveries_per_second: float
    centrifugo_hosts: int
    nginx_hosts: int
    redis_shards: int
    centrifugo_cores: float
    nginx_cores: float
    centrifugo_memory_gib: float
    nginx_memory_gib: float
    redis_pubsub_per_second: float


def size(figures: Figures, connections: int, rate: float, members: int = 1000, host_cores: int = 8,
         host_memory_gib: float = 16.0) -> Sizing:
    """Hosts per tier for ``connections`` clients in rooms of ``members`` getting ``rate`` messages per second
    each (the module's docstring has the model). A tier has at least one host; Centrifugo at least two, and
    Redis shards at least one."""
    usable_cores, usable_gib = host_cores * HEADROOM, host_memory_gib * HEADROOM
    publications = connections / members * rate
    deliveries = connections * rate
    gib = 1024 ** 3
    cf_cores = (deliveries / figures.centrifugo_deliveries_per_cpu_second
                + connections * figures.centrifugo_idle_cpu_per_connection)
    ngx_cores = deliveries / figures.nginx_deliveries_per_cpu_second + connections * figures.nginx_idle_cpu_per_connection
    cf_gib = connections * figures.centrifugo_bytes_per_connection / gib
    ngx_gib = connections * figures.nginx_bytes_per_connection / gib
    cf_hosts = max(2, math.ceil(cf_cores / usable_cores), math.ceil(cf_gib / usable_gib))
    ngx_hosts = max(1, math.ceil(ngx_cores / usable_cores), math.ceil(ngx_gib / usable_gib))
    pubsub = publications * (1 + cf_hosts)
    shards = max(1, math.ceil(pubsub / (REDIS_PUBSUB_PER_SECOND * HEADROOM)))
    return Sizing(connections, rate, publications, deliveries, cf_hosts, ngx_hosts, shards, round(cf_cores, 1),
                  round(ngx_cores, 1), round(cf_gib, 1), round(ngx_gib, 1), pubsub)


def table(figures: Figures, host_cores: int = 8, host_memory_gib: float = 16.0) -> str:
    """The sizing of every load of CONNECTIONS x RATES as Markdown."""
    lines = [f"| connections | msg/s per room of 1000 | deliveries/s | Centrifugo hosts | nginx hosts | Redis shards "
             f"| Centrifugo cores / GiB | nginx cores / GiB | Redis PUB/SUB msg/s |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for connections in CONNECTIONS:
        for rate in RATES:
            s = size(figures, connections, rate, host_cores=host_cores, host_memory_gib=host_memory_gib)
            lines.append(f"| {connections:,} | {rate} | {s.deliveries_per_second:,.0f} | {s.centrifugo_hosts} "
                         f"| {s.nginx_hosts} | {s.redis_shards} | {s.centrifugo_cores} / {s.centrifugo_memory_gib} "
                         f"| {s.nginx_cores} / {s.nginx_memory_gib} | {s.redis_pubsub_per_second:,.0f} |")
    return "\n".join(lines)


async def check(figures: Figures, args: argparse.Namespace) -> dict:
    """Run one point of the model on the deployed stack: ``args.check_connections`` JWT clients (the load
    generator) in rooms of ``args.members``, each room getting ``args.check_rate`` messages per second through
    Centrifugo's server API for ``args.check_seconds`` seconds, on freshly restarted nginx and Centrifugo.
    Returns the model's prediction and what nginx and Centrifugo used: cores (CPU-seconds per second of the
    publishing window) and memory above idle (GiB)."""
    stack = Stack.discover(args.manifest, None, args.credentials_dir)
    roles = PATHS["centrifugo"][:2]  # nginx, Centrifugo: the tiers the model sizes from figures
    rooms = [f"capacity-{k}" for k in range(math.ceil(args.check_connections / args.members))]
    async with LoadGenerator() as loadgen:
        ctx = BenchContext(args, stack, loadgen)
        ctx.join_rooms(rooms)
        stack.restart(RESTART["centrifugo"])
        await asyncio.sleep(5)
        idle = stack.sample(roles)
        progress(f"capacity check: {args.check_connections} clients in {len(rooms)} rooms")
        opened = await loadgen.open(ctx.spec("centrifugo", "jwt", rooms), args.check_connections, 500, 180)
        publishers = [CentrifugoPublisher(ctx.api_urls, ctx.api_key, f"rooms:{room}") for room in rooms]
        try:
            await asyncio.sleep(5)
            await loadgen.receipts(reset=True)
            before, start = stack.sample(roles), time.monotonic()
            progress(f"capacity check: {args.check_rate} msg/s per room for {args.check_seconds} s")
            ticks = int(args.check_seconds * args.check_rate)
            failed, _ = await publish_at_rate(lambda data: asyncio.gather(*(p.send(data) for p in publishers)),
                                              args.check_rate, ticks, 100)
            window = time.monotonic() - start
            # Every room got a message per tick, and every open client is a member of one room.
            expected = (ticks - failed) * opened.count
            await loadgen.drain(expected, 30)
            after = stack.sample(roles)
            receipts = await loadgen.receipts()
        finally:
            for publisher in publishers:
                await publisher.close()
            await loadgen.close(opened)
    model = size(figures, opened.count, args.check_rate, members=opened.count / len(rooms))
    gib = 1024 ** 3
    return {"connections": opened.count, "errors": opened.errors, "rooms": len(rooms), "window_s": round(window, 1),
            "publish_errors": failed, "deliveries": receipts.delivered, "expected_deliveries": expected,
            "predicted": {"centrifugo_cores": model.centrifugo_cores, "nginx_cores": model.nginx_cores,
                          "centrifugo_memory_gib": model.centrifugo_memory_gib, "nginx_memory_gib": model.nginx_memory_gib},
            "measured": {"centrifugo_cores": round((after.cpu["centrifugo"] - before.cpu["centrifugo"]) / window, 2),
                         "nginx_cores": round((after.cpu["nginx"] - before.cpu["nginx"]) / window, 2),
                         "centrifugo_memory_gib": round((before.rss["centrifugo"] - idle.rss["centrifugo"]) / gib, 2),
                         "nginx_memory_gib": round((before.rss["nginx"] - idle.rss["nginx"]) / gib, 2)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", default=str(ROOT / "bench" / "results" / "latest.json"))
    parser.add_argument("--host-cores", type=int, default=8)
    parser.add_argument("--host-memory-gib", type=float, default=16.0)
    parser.add_argument("--check", action="store_true", help="check one point on the stack `make up` deployed")
    parser.add_argument("--check-connections", type=int, default=6000,
                        help="clients of the check; below half of nginx's worker_connections x workers (16384 on the "
                             "local hosts: 8000 clients already met refusals, the workers' shares being uneven)")
    parser.add_argument("--check-rate", type=float, default=1.0, help="messages per second per room")
    parser.add_argument("--check-seconds", type=float, default=30.0)
    parser.add_argument("--members", type=int, default=1000)
    add_stack_arguments(parser)
    args = parser.parse_args(argv)
    figures = Figures.from_results(json.loads(Path(args.results).read_text()))
    print(f"Figures from {args.results}: {figures}\n")
    print(table(figures, args.host_cores, args.host_memory_gib))
    if args.check:
        result = asyncio.run(check(figures, args))
        print("\n" + json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
