"""Fan-out: 1 publisher -> K subscribers (already open in the load generator, all in the benchmark
room), ``--messages`` payloads of ``--size`` bytes at ``--rate`` per second; deliveries/s,
deliveries per server CPU-second (nginx + Centrifugo or daphne + Redis, from /proc), latency
p50/p99 from publish to receipt (milliseconds)."""
from __future__ import annotations

import time

from .context import BenchContext
from .load import ms, percentile, progress, publish_at_rate
from .stack import PATHS


async def measure(ctx: BenchContext, path: str, subscribers: int) -> dict:
    """Publish at the configured rate on ``path`` and count what the ``subscribers`` get within
    ``--drain-timeout`` seconds. Returns the figures (times in seconds unless the key says ms)."""
    args, loadgen = ctx.args, ctx.loadgen
    await loadgen.receipts(reset=True)
    publisher = ctx.publisher(path)
    roles = PATHS[path]
    before, client_before = ctx.stack.sample(roles), await loadgen.cpu()
    progress(f"{path}: fan-out, {args.messages} messages at {args.rate}/s to {subscribers} subscribers")
    try:
        failed, first_publish = await publish_at_rate(publisher.send, args.rate, args.messages, args.size)
        expected = (args.messages - failed) * subscribers
        await loadgen.drain(expected, args.drain_timeout)
    finally:
        await publisher.close()
    after, client_seconds = ctx.stack.sample(roles), await loadgen.cpu_since(client_before)
    receipts = await loadgen.receipts()
    cpu = after.cpu_since(before, roles)
    elapsed = (receipts.last_receipt or time.time()) - first_publish
    return {
        "subscribers": subscribers, "messages": args.messages, "rate_per_second": args.rate,
        "payload_bytes": args.size, "publish_errors": failed,
        "expected_deliveries": expected, "deliveries": receipts.delivered,
        "lost": expected - receipts.delivered,
        "seconds": round(elapsed, 3),
        "deliveries_per_second": round(receipts.delivered / elapsed) if elapsed > 0 else None,
        "deliveries_per_server_cpu_second": round(receipts.delivered / cpu) if cpu > 0 else None,
        **after.cpu_figures(before, roles, client_seconds),
        "latency_ms": {"p50": ms(percentile(receipts.latencies, 50)),
                       "p99": ms(percentile(receipts.latencies, 99)),
                       "max": ms(max(receipts.latencies, default=None))},
    }
