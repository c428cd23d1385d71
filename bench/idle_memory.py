"""Idle memory per connection at ``--idle-connections`` counts (1000 and 5000): RSS of nginx and
the server processes, total and above the idle baseline, divided by the connections (bytes); on
the Centrifugo path also the Go runtime's live heap + stacks per connection. And what idle connections cost in
CPU (pings, presence refreshes): CPU-seconds per second per connection over ``IDLE_CPU_WINDOW`` seconds."""
from __future__ import annotations

import asyncio

from .context import BenchContext
from .load import progress
from .stack import PATHS, Sample

#: Seconds over which the CPU of the idle connections is measured (Centrifugo pings each client every 25 s).
IDLE_CPU_WINDOW = 15.0


def figure(ctx: BenchContext, path: str, baseline: Sample, now: Sample, conns: int,
           go_baseline: int | None = None) -> dict:
    """Memory in ``now`` with ``conns`` connections open, against ``baseline`` (bytes)."""
    roles = PATHS[path][:2]  # nginx + the server processes (Redis is shared by both paths)
    total = sum(now.rss[r] for r in roles)
    base = sum(baseline.rss[r] for r in roles)
    out = {"connections": conns, "rss_bytes": total, "baseline_rss_bytes": base,
           "bytes_per_connection": round(total / conns) if conns else None,
           "bytes_per_connection_above_idle": round((total - base) / conns) if conns else None,
           "by_process": {r: now.rss[r] for r in roles},
           "above_idle_per_connection_by_process": {
               r: round((now.rss[r] - baseline.rss[r]) / conns) if conns else None for r in roles}}
    if go_baseline is not None:
        live = ctx.stack.go_memory()
        out["centrifugo_go_inuse_bytes"] = live
        out["centrifugo_go_inuse_per_connection"] = round((live - go_baseline) / conns) if conns else None
    return out


def idle_cpu(path: str, quiet: Sample, now: Sample, conns: int) -> dict:
    """CPU-seconds per second per connection of nginx and the server processes from ``quiet`` to ``now``
    (IDLE_CPU_WINDOW seconds apart, with ``conns`` idle connections open)."""
    roles = PATHS[path][:2]
    return {r: (now.cpu[r] - quiet.cpu[r]) / IDLE_CPU_WINDOW / conns if conns else None for r in roles}


async def measure(ctx: BenchContext, path: str, baseline: Sample, go_baseline: int | None) -> list[dict]:
    """Memory with ``--idle-connections`` idle JWT-authenticated clients spread over the burst
    rooms, on freshly restarted servers: measured first, before any other load leaves freed memory
    in the processes. Every connection is closed at the end."""
    spec, groups, held, figures = ctx.spec(path, "jwt", ctx.rooms), [], 0, []
    try:
        for target in ctx.args.idle_connections:
            progress(f"{path}: idle memory, opening up to {target} connections")
            result = await ctx.loadgen.open(spec, target - held, 200, ctx.args.deadline)
            groups.append(result)
            held += result.count
            await asyncio.sleep(5)
            quiet = ctx.stack.sample(PATHS[path][:2])
            await asyncio.sleep(IDLE_CPU_WINDOW)
            now = ctx.stack.sample(PATHS[path][:2])
            entry = figure(ctx, path, baseline, now, held, go_baseline)
            entry["idle_cpu_per_connection_by_process"] = idle_cpu(path, quiet, now, held)
            entry["errors"] = result.errors
            figures.append(entry)
    finally:
        for group in groups:
            await ctx.loadgen.close(group)
    await asyncio.sleep(2)
    return figures
