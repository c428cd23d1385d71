"""Idle memory per connection at ``--idle-connections`` counts (1000 and 5000): RSS of nginx and
the server processes, total and above the idle baseline, divided by the connections (bytes); on
the Centrifugo path also the Go runtime's live heap + stacks per connection."""
from __future__ import annotations

import asyncio

from .context import BenchContext
from .load import Receipts, close_many, open_many, progress
from .stack import PATHS, Sample


def figure(ctx: BenchContext, path: str, baseline: Sample, conns: int, go_baseline: int | None = None) -> dict:
    """Memory now with ``conns`` connections open, against ``baseline`` (bytes)."""
    roles = PATHS[path][:2]  # nginx + the server processes (Redis is shared by both paths)
    now = ctx.stack.sample(roles)
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


async def measure(ctx: BenchContext, path: str, baseline: Sample, go_baseline: int | None) -> list[dict]:
    """Memory with ``--idle-connections`` idle JWT-authenticated clients spread over the burst
    rooms, on freshly restarted servers: measured first, before any other load leaves freed memory
    in the processes. Every connection is closed at the end."""
    receipts, conns, figures = Receipts(), [], []
    make = ctx.maker(path, receipts, "jwt", ctx.rooms)
    try:
        for target in ctx.args.idle_connections:
            progress(f"{path}: idle memory, opening up to {target} connections")
            result = await open_many(make, target - len(conns), concurrency=200,
                                     deadline=ctx.args.deadline, label=f"{path} idle")
            conns += result.conns
            await asyncio.sleep(5)
            entry = figure(ctx, path, baseline, len(conns), go_baseline)
            entry["errors"] = result.errors
            figures.append(entry)
    finally:
        await close_many(conns)
    await asyncio.sleep(2)
    return figures
