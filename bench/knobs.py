"""One server setting at a time, before and after: ``python -m bench.knobs`` (``make bench-knobs``).

A knob is a documented inventory variable of a role (KNOBS: its tier's entry point and the values to
try). On the stack ``RTSTACK_BENCH=1 make up`` deployed, for the roles' defaults first and then for
each value of each knob alone:

1. converge the knob's tier with the value (``playbooks/<tier>.yml --tags <tier>_assert,
   <tier>_configure,<tier>_service -e {"<knob>": value}``: the role checks it, writes the file with
   its validation, and its handlers restart or reload what changed);
2. restart nginx and every Centrifugo instance, so that each row starts from fresh processes (Go
   and nginx keep memory they freed);
3. measure the Centrifugo path with the load generator (bench.loadgen): idle memory at
   ``--idle-connections`` (JWT clients over ``--burst-rooms`` rooms), a fan-out (``--subscribers``
   in one room, ``--messages`` at ``--rate``), and a JWT connect+subscribe burst of ``--burst``;

and converge the tier back to its defaults after its knob's values. Prints one table, a row per
(knob, value) with the defaults' row first, and writes ``bench/results/knobs-<UTC time>.json``.
Each row is one run on a 2-core machine shared with the load generator: compare rows of one run,
and read a difference smaller than the defaults' row-to-row spread (``--repeat-defaults``) as none.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

from rtclient.playbook import run_playbook

from . import burst, fanout, idle_memory, max_connections
from .context import BenchContext, add_load_arguments, add_stack_arguments
from .load import progress
from .loadgen import LoadGenerator
from .stack import LOCAL_INVENTORY, PATHS, RESTART, ROOT, Stack

RESULTS = ROOT / "bench" / "results"

#: Knob -> (its tier: the entry point playbooks/<tier>.yml and the tags <tier>_assert/_configure/_service,
#: the values tried besides the role's default). Each is documented in its role's README.
KNOBS: dict[str, tuple[str, list]] = {
    "nginx_ssl_buffer_size": ("nginx", ["4k"]),
    "nginx_websocket_proxy_buffer_size": ("nginx", ["1k"]),
    "nginx_worker_processes": ("nginx", [1]),
    "centrifugo_websocket_use_write_buffer_pool": ("centrifugo", [True]),
    "centrifugo_websocket_read_buffer_size": ("centrifugo", [1024]),
    "centrifugo_websocket_write_buffer_size": ("centrifugo", [1024]),
    "centrifugo_go_gc": ("centrifugo", [50, 200]),
}


def converge(tier: str, extra: dict | None = None) -> float:
    """Converge ``tier`` with the extra variables ``extra`` (none: the inventory's values); returns the
    run's seconds. Raises RuntimeError with the output's end when the run fails (a refused value)."""
    args = ["--tags", f"{tier}_assert,{tier}_configure,{tier}_service"]
    if extra:
        args += ["-e", json.dumps(extra)]
    run = run_playbook(f"{tier}.yml", *args, timeout=600, env={"RTSTACK_BENCH": "1"})
    if run.returncode != 0:
        raise RuntimeError(f"{tier}.yml {extra or ''} failed (rc {run.returncode}):\n{run.tail()}")
    return run.seconds


async def measure_row(ctx: BenchContext) -> dict:
    """Idle memory, fan-out and JWT burst of the Centrifugo path on freshly restarted servers."""
    ctx.stack.restart(RESTART["centrifugo"])
    await asyncio.sleep(5)
    baseline = ctx.stack.sample(PATHS["centrifugo"])
    row = {"idle_memory": await idle_memory.measure(ctx, "centrifugo", baseline, ctx.stack.go_memory())}
    subs = await ctx.loadgen.open(ctx.spec("centrifugo", "jwt"), ctx.args.subscribers, 200, ctx.args.deadline)
    try:
        await asyncio.sleep(3)
        row["fanout"] = await fanout.measure(ctx, "centrifugo", subs.count)
    finally:
        await ctx.loadgen.close(subs)
    await asyncio.sleep(2)
    row["burst"], conns = await burst.measure(ctx, "centrifugo", "jwt", ctx.args.burst)
    await ctx.loadgen.close(conns)
    return row


def summary(name: str, value: object, row: dict) -> dict:
    """The figures of one row that the table compares."""
    idle = row["idle_memory"][-1]
    by_process = idle["above_idle_per_connection_by_process"]
    fan, burst_ = row["fanout"], row["burst"]
    return {"knob": name, "value": value, "connections": idle["connections"],
            "nginx_bytes_per_connection": by_process.get("nginx"),
            "centrifugo_bytes_per_connection": by_process.get("centrifugo"),
            "go_inuse_bytes_per_connection": idle.get("centrifugo_go_inuse_per_connection"),
            "fanout_per_server_cpu_second": fan["deliveries_per_server_cpu_second"],
            "fanout_nginx_cpu_s": fan["server_cpu_seconds_by_process"]["nginx"],
            "fanout_centrifugo_cpu_s": fan["server_cpu_seconds_by_process"]["centrifugo"],
            "fanout_lost": fan["lost"], "fanout_p99_ms": fan["latency_ms"]["p99"],
            "fanout_client_cpu_s": fan["client_cpu_seconds"],
            "burst_per_server_cpu_second": burst_["connections_per_server_cpu_second"],
            "burst_errors": burst_["error_count"]}


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table (KB = 1000 bytes)."""
    def kb(value: int | None) -> str:
        return "–" if value is None else f"{value / 1000:.1f}"

    lines = ["| knob | value | nginx KB/conn | Centrifugo KB/conn | Go in use KB/conn | fan-out per server CPU-s "
             "| nginx / Centrifugo CPU-s | p99 ms | lost | client CPU-s | JWT burst per server CPU-s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['knob']} | {r['value']} | {kb(r['nginx_bytes_per_connection'])} "
                     f"| {kb(r['centrifugo_bytes_per_connection'])} | {kb(r['go_inuse_bytes_per_connection'])} "
                     f"| {r['fanout_per_server_cpu_second']:,} | {r['fanout_nginx_cpu_s']} / {r['fanout_centrifugo_cpu_s']} "
                     f"| {r['fanout_p99_ms']} | {r['fanout_lost']} | {r['fanout_client_cpu_s']} "
                     f"| {r['burst_per_server_cpu_second']} |")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> dict:
    """Every row; the tiers are back on their defaults at the end, also after a failure."""
    stack = Stack.discover(args.manifest, None, args.credentials_dir)
    rows, raw = [], []
    async with LoadGenerator() as loadgen:
        ctx = BenchContext(args, stack, loadgen)
        max_connections.check_exempt(ctx)
        ctx.spread_rooms()
        for k in range(args.repeat_defaults):
            progress(f"knobs: the roles' defaults ({k + 1}/{args.repeat_defaults})")
            row = await measure_row(ctx)
            raw.append({"knob": "defaults", "value": None, **row})
            rows.append(summary("defaults", "–", row))
        for name in args.knobs:
            tier, values = KNOBS[name]
            try:
                for value in values:
                    progress(f"knobs: {name} = {value!r} ({tier}.yml)")
                    seconds = converge(tier, {name: value})
                    row = await measure_row(ctx)
                    raw.append({"knob": name, "value": value, "converge_s": round(seconds, 1), **row})
                    rows.append(summary(name, value, row))
            finally:
                progress(f"knobs: {tier} back to its defaults")
                converge(tier)
    return {"rows": rows, "raw": raw}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.knobs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--knobs", default=",".join(KNOBS), type=lambda v: v.split(","),
                        help=f"knobs to try, comma-separated (default: all of {', '.join(KNOBS)})")
    add_stack_arguments(parser)
    add_load_arguments(parser, idle_connections="3000", burst=2000)
    parser.add_argument("--repeat-defaults", type=int, default=2,
                        help="rows of the defaults (their spread is the run's noise)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    unknown = [k for k in args.knobs if k not in KNOBS]
    if unknown:
        parser.error(f"unknown knobs {unknown}; known: {', '.join(KNOBS)}")
    os.environ.setdefault("RTSTACK_INVENTORY", str(LOCAL_INVENTORY))
    started = time.gmtime()
    result = asyncio.run(run(args))
    document = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", started),
                "parameters": {k: v for k, v in vars(args).items() if k != "out"}, **result}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"knobs-{time.strftime('%Y%m%dT%H%M%SZ', started)}.json"
    path.write_text(json.dumps(document, indent=2))
    print(table(result["rows"]))
    progress(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
