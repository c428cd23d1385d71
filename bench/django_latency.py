"""Latency from Django: the room's message form (gunicorn saves the message, then ``publish()``)
at 1 message per second to the K open subscribers; p50/p99 of the time from the save to the
last (and the first) subscriber's receipt, milliseconds; the servers' CPU (the path's, plus gunicorn, which
saves the message) and the load client's over the same run, so that a latency the client caused is flagged
client-bound (bench.report.client_bound)."""
from __future__ import annotations

import asyncio
import time

from .context import BenchContext
from .load import django_poster, ms, percentile, progress
from .stack import PATHS


async def measure(ctx: BenchContext, path: str, subscribers: int) -> dict:
    """Post ``--django-messages`` messages, one per second, and time their deliveries to the
    ``subscribers`` open in the load generator (waits at most 15 s for the last ones)."""
    args, loadgen = ctx.args, ctx.loadgen
    await loadgen.receipts(reset=True)
    post = django_poster(ctx.session, ctx.site_url, args.room)
    roles = PATHS[path] + ("gunicorn",)  # the form post is saved and published by gunicorn
    before, client_before = ctx.stack.sample(roles), await loadgen.cpu()
    progress(f"{path}: latency from Django, {args.django_messages} messages at 1/s")
    request_seconds, errors = [], 0
    start = time.monotonic()
    for seq in range(args.django_messages):
        delay = start + seq - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            request_seconds.append(await post(seq))
        except Exception:  # noqa: BLE001 - counted
            errors += 1
    await loadgen.drain((args.django_messages - errors) * subscribers, 15)
    after, client_seconds = ctx.stack.sample(roles), await loadgen.cpu_since(client_before)
    receipts = await loadgen.receipts()
    # Per message: the last subscriber's receipt minus the time Django saved it.
    last = [receipts.last_by_seq[s] - receipts.first_ts(s) for s in receipts.last_by_seq]
    first = [receipts.first_by_seq[s] - receipts.first_ts(s) for s in receipts.first_by_seq]
    complete = sum(1 for s, n in receipts.count_by_seq.items() if n == subscribers)
    return {"subscribers": subscribers, "messages": args.django_messages, "post_errors": errors,
            "messages_reaching_every_subscriber": complete,
            "last_subscriber_ms": {"p50": ms(percentile(last, 50)), "p99": ms(percentile(last, 99))},
            # The first receipt: the server path alone, before the other subscribers' copies of the
            # same message reached their clients.
            "first_subscriber_ms": {"p50": ms(percentile(first, 50)), "p99": ms(percentile(first, 99))},
            "every_delivery_ms": {"p50": ms(percentile(receipts.latencies, 50)),
                                  "p99": ms(percentile(receipts.latencies, 99))},
            "form_post_ms_p50": ms(percentile(request_seconds, 50)),
            **after.cpu_figures(before, roles, client_seconds)}
