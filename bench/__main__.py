"""``python -m bench`` (``make bench``): measure the stack deployed by ``make up`` with
``realtime_backend: both``, the Centrifugo path (nginx -> Centrifugo nodes -> Redis) against the
Channels path (nginx -> daphne -> channels_redis), in one run on the same hosts, then the
deployment itself (bench.deploy). Results go to ``bench/results/`` (JSON, Markdown, PNG) and the
table to stdout; progress to stderr.

Measurements (each loop bounded in count and seconds):

1. fan-out: 1 publisher -> K subscribers (``--subscribers``, 1000), ``--messages`` payloads of
   ``--size`` bytes at ``--rate`` per second; deliveries/s, deliveries per server CPU-second
   (nginx + Centrifugo or daphne + Redis, from /proc), latency p50/p99 publish -> receipt;
2. latency from Django: the room's message form (gunicorn saves, then ``publish()``) at 1 msg/s
   to the same K subscribers, p50/p99 of the time to the last subscriber's receipt;
3. idle memory per connection at K and ``--burst`` connections (RSS of nginx + the server
   processes, total and above the idle baseline, divided by the connections);
4. connect + subscribe burst of ``--burst`` clients (5000): connections/s, handshake p50/p99,
   errors; Centrifugo with the connect proxy and with JWT (connection + subscription tokens);
5. maximum concurrent connections through nginx without errors (Centrifugo path), in steps up
   to ``--max-connections``, against the limits that bound it;
6. deployment: cold and warm ``site.yml`` (bench.deploy; ``--skip-deploy`` leaves it out).

Addresses and ports come from the stack manifest (``--manifest``, else RTSTACK_MANIFEST, else
build/<RTSTACK_STACK_NAME or local>/stack.json, rendered by site.yml). This module only
orchestrates: each measurement is its own module (bench.fanout, bench.django_latency,
bench.idle_memory, bench.burst, bench.max_connections), sharing bench.context.BenchContext.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from . import burst, django_latency, fanout, idle_memory, max_connections, report
from .context import BenchContext, add_load_arguments, add_stack_arguments
from .load import progress
from .loadgen import LoadGenerator
from .stack import PATHS, RESTART, ROOT, SETUPS, Stack, backend, machine

RESULTS = ROOT / "bench" / "results"


async def run_path(ctx: BenchContext, path: str) -> dict:
    """Every measurement of one path, in order; all its connections are closed at the end."""
    args = ctx.args
    out: dict = {}
    # Fresh server processes for each path, so that both start from the same state and the
    # idle baseline of the memory figures is a real idle (Go and Python keep freed memory).
    progress(f"{path}: restarting nginx and the {path} servers")
    ctx.stack.restart(RESTART[path])
    await asyncio.sleep(5)  # daphne and Centrifugo finish starting; nginx upstreams settle
    baseline = ctx.stack.sample(PATHS[path])
    go_baseline = ctx.stack.go_memory() if backend(path) == "centrifugo" else None
    out["idle_memory"] = await idle_memory.measure(ctx, path, baseline, go_baseline)
    progress(f"{path}: opening {args.subscribers} subscribers of one room")
    subs = await ctx.loadgen.open(ctx.spec(path), args.subscribers, 200, args.deadline)
    try:
        if subs.errors:
            progress(f"{path}: subscriber errors {subs.errors}")
        await asyncio.sleep(3)
        out["fanout"] = await fanout.measure(ctx, path, subs.count)
        out["django_latency"] = await django_latency.measure(ctx, path, subs.count)
    finally:
        await ctx.loadgen.close(subs)
    await asyncio.sleep(2)
    out["burst"] = []
    for auth in (["proxy", "jwt"] if backend(path) == "centrifugo" else ["cookie"]):
        result, conns = await burst.measure(ctx, path, "jwt" if auth == "jwt" else "cookie", args.burst)
        result["auth"] = auth
        out["burst"].append(result)
        await ctx.loadgen.close(conns)
        await asyncio.sleep(2)
    return out


async def run_load(args: argparse.Namespace, stack: Stack) -> dict:
    """Both paths' measurements, then the maximum connections (unless ``--max-connections 0``)."""
    async with LoadGenerator() as loadgen:
        ctx = BenchContext(args, stack, loadgen)
        max_connections.check_exempt(ctx)
        ctx.spread_rooms()
        results: dict = {"paths": {}, "setups": {}}
        initial = stack.settings()
        try:
            for path in args.paths:
                values = SETUPS[path][1]
                progress(f"{path}: stack set to {values}")
                seconds = stack.select(values)
                results["setups"][path] = {**stack.settings(), "converge_seconds": round(seconds, 1)}
                results["paths"][path] = await run_path(ctx, path)
            if args.max_connections > 0:
                stack.select(initial)
                results["max_connections"] = await max_connections.measure(ctx)
        finally:
            progress(f"stack set back to {initial}")
            stack.select(initial)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    add_stack_arguments(parser)
    add_load_arguments(parser, idle_connections="1000,5000", burst=5000)
    parser.add_argument("--site-url", default=None, help="the public origin (default: the manifest's site_url)")
    parser.add_argument("--paths", default=",".join(SETUPS), type=lambda s: s.split(","),
                        help="setups to measure, in order (bench.stack.SETUPS: centrifugo = l7, centrifugo_l4, "
                             "channels = RedisChannelLayer, channels_pubsub); the stack is converged to each")
    parser.add_argument("--django-messages", type=int, default=10)
    parser.add_argument("--max-connections", type=int, default=15000, help="0 skips the measurement")
    parser.add_argument("--max-step", type=int, default=1000)
    parser.add_argument("--skip-deploy", action="store_true", help="leave out the deployment timing")
    parser.add_argument("--deploy-strategies", default="default,mitogen")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)

    started = time.time()
    deployment = None
    if not args.skip_deploy:
        from . import deploy  # times cold and warm site.yml; leaves the stack deployed

        progress("deployment: cold and warm site.yml")
        deployment = deploy.measure(args.deploy_strategies.split(","))
    stack = Stack.discover(args.manifest, args.site_url, args.credentials_dir)  # after deploy: fresh manifest
    results = asyncio.run(run_load(args, stack))
    document = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started),
        "machine": machine(),
        "versions": stack.versions(),
        "parameters": {k: v for k, v in vars(args).items() if k not in ("out",)},
        **results,
        "deployment": deployment,
    }
    document["summary"] = report.summary(document)
    paths = report.write(document, Path(args.out))
    print(report.markdown(document))
    progress("results: " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
