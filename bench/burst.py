"""Connect + subscribe burst: ``--burst`` clients (5000) spread over the burst rooms, at most
``--burst-concurrency`` handshakes in flight; connections/s, handshake p50/p99 (ms), errors by
kind, connections per server CPU-second (nginx + server + Redis + gunicorn, which runs the
connect and subscribe proxies)."""
from __future__ import annotations

from .context import BenchContext
from .load import ms, percentile, progress
from .loadgen import Opened
from .stack import PATHS


async def measure(ctx: BenchContext, path: str, auth: str, count: int) -> tuple[dict, Opened]:
    """Open ``count`` connections of ``path`` authenticated by ``auth`` (``cookie`` or ``jwt``).
    Returns the figures and the open connections (the caller closes them)."""
    spec = ctx.spec(path, auth, ctx.rooms)
    progress(f"{path}: burst of {count} connect+subscribe ({auth}) over {len(ctx.rooms)} rooms")
    roles = PATHS[path] + ("gunicorn",)  # the connect and subscribe proxies run in gunicorn
    before, client_before = ctx.stack.sample(roles), await ctx.loadgen.cpu()
    result = await ctx.loadgen.open(spec, count, ctx.args.burst_concurrency, ctx.args.deadline)
    after, client_seconds = ctx.stack.sample(roles), await ctx.loadgen.cpu_since(client_before)
    server = after.cpu_since(before, roles)
    return {"auth": auth, "clients": count, "rooms": len(ctx.rooms), "connected": result.count,
            "errors": result.errors, "error_count": sum(result.errors.values()), "seconds": round(result.seconds, 3),
            "connections_per_second": round(result.count / result.seconds) if result.seconds else None,
            "handshake_ms": {"p50": ms(percentile(result.handshakes, 50)),
                             "p99": ms(percentile(result.handshakes, 99))},
            "connections_per_server_cpu_second": round(result.count / server) if server > 0 else None,
            **after.cpu_figures(before, roles, client_seconds)}, result
