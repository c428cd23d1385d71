"""Fan-out: 1 publisher -> K subscribers (already open, all in the benchmark room),
``--messages`` payloads of ``--size`` bytes at ``--rate`` per second; deliveries/s, deliveries
per server CPU-second (nginx + Centrifugo or daphne + Redis, from /proc), latency p50/p99 from
publish to receipt (milliseconds)."""
from __future__ import annotations

import time

from .context import BenchContext
from .load import Receipts, client_cpu, drain, ms, percentile, progress, publish_at_rate
from .stack import PATHS


async def measure(ctx: BenchContext, path: str, receipts: Receipts, subscribers: int) -> dict:
    """Publish at the configured rate on ``path`` and count what the ``subscribers`` (recording
    into ``receipts``) get within ``--drain-timeout`` seconds. Returns the figures (times in
    seconds unless the key says ms)."""
    args = ctx.args
    receipts.reset()
    publisher = ctx.publisher(path)
    roles = PATHS[path]
    before, client_before = ctx.stack.sample(roles), client_cpu()
    progress(f"{path}: fan-out, {args.messages} messages at {args.rate}/s to {subscribers} subscribers")
    try:
        failed = await publish_at_rate(publisher.send, receipts, args.rate, args.messages, args.size)
        expected = (args.messages - failed) * subscribers
        await drain(receipts, expected, args.drain_timeout)
    finally:
        await publisher.close()
    after = ctx.stack.sample(roles)
    cpu = after.cpu_since(before, roles)
    elapsed = (receipts.last_receipt or time.time()) - receipts.first_publish
    client_seconds = client_cpu() - client_before
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
