"""Connect + subscribe burst: ``--burst`` clients (5000) spread over the burst rooms, at most
``--burst-concurrency`` handshakes in flight; connections/s, handshake p50/p99 (ms), errors by
kind, connections per server CPU-second (nginx + server + Redis + gunicorn, which runs the
connect and subscribe proxies)."""
from __future__ import annotations

from .context import BenchContext
from .load import Receipts, client_cpu, ms, open_many, percentile, progress
from .stack import PATHS


async def measure(ctx: BenchContext, path: str, auth: str, count: int) -> tuple[dict, list]:
    """Open ``count`` connections of ``path`` authenticated by ``auth`` (``cookie`` or ``jwt``).
    Returns the figures and the open connections (the caller closes them)."""
    receipts = Receipts()
    make = ctx.maker(path, receipts, auth, ctx.rooms)
    progress(f"{path}: burst of {count} connect+subscribe ({auth}) over {len(ctx.rooms)} rooms")
    roles = PATHS[path] + ("gunicorn",)  # the connect and subscribe proxies run in gunicorn
    before, client_before = ctx.stack.sample(roles), client_cpu()
    result = await open_many(make, count, concurrency=ctx.args.burst_concurrency,
                             deadline=ctx.args.deadline, label=f"{path} burst ({auth})")
    after, client_seconds = ctx.stack.sample(roles), client_cpu() - client_before
    server = after.cpu_since(before, roles)
    opened = len(result.conns)
    return {"auth": auth, "clients": count, "rooms": len(ctx.rooms), "connected": opened, "errors": result.errors,
            "error_count": sum(result.errors.values()), "seconds": round(result.seconds, 3),
            "connections_per_second": round(opened / result.seconds) if result.seconds else None,
            "handshake_ms": {"p50": ms(percentile(result.handshakes, 50)),
                             "p99": ms(percentile(result.handshakes, 99))},
            "connections_per_server_cpu_second": round(opened / server) if server > 0 else None,
            **after.cpu_figures(before, roles, client_seconds)}, result.conns
