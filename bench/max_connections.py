"""Maximum concurrent connections through nginx without errors (Centrifugo path, JWT), in steps
of ``--max-step`` up to ``--max-connections``, against the limits that bound it (open files of
this controller and of each server process, nginx's worker settings)."""
from __future__ import annotations

import resource
from pathlib import Path

from rtclient import hosts

from .context import BenchContext
from .load import progress


def check_exempt(ctx: BenchContext) -> None:
    """Fail early unless nginx exempts this controller from its per-address limits (the local
    inventory does under RTSTACK_BENCH=1); else thousands of connects get 429.

    Raises:
        SystemExit: not exempt (the message says how to deploy so that it is).
    """
    gateway = hosts.network_gateway(ctx.stack.manifest.nginx[0].host)
    if f"{gateway} 0;" not in ctx.stack.nginx_config():
        raise SystemExit(f"nginx limits connections per address and this controller ({gateway}) is not exempt: "
                         "deploy with RTSTACK_BENCH=1 (`make bench` does; or `RTSTACK_BENCH=1 make up`)")


def nginx_limits(ctx: BenchContext) -> dict:
    """worker_processes, worker_connections and worker_rlimit_nofile from ``nginx -T``."""
    conf = ctx.stack.nginx_config()
    found = {}
    for key in ("worker_processes", "worker_connections", "worker_rlimit_nofile"):
        for line in conf.splitlines():
            parts = line.strip().rstrip(";").split()
            if parts and parts[0] == key:
                found[key] = parts[1]
                break
    return found


def process_limits(ctx: BenchContext) -> dict:
    """``Max open files`` (soft, hard) of one process of each server role, from /proc."""
    found, processes = {}, ctx.stack.processes()
    for role in ("nginx", "centrifugo", "daphne"):
        pids = ctx.stack.pids(role, processes)
        if not pids:
            continue
        # nginx: a worker (the master is first and runs as root with other limits)
        pid = max(pids) if role == "nginx" else pids[0]
        try:
            text = Path(f"/proc/{pid}/limits").read_text()
        except FileNotFoundError:
            continue
        line = next(line for line in text.splitlines() if line.startswith("Max open files"))
        found[role] = [int(v) for v in line.split()[3:5]]
    return found


async def measure(ctx: BenchContext) -> dict:
    """Open Centrifugo connections (JWT) through nginx in steps of ``--max-step`` until a step
    has errors or ``--max-connections`` are open; report the largest count held with no
    error, how many were open when the first errors came, and the limits that bound it."""
    args = ctx.args
    groups, opened, held, errors, at_first_error = [], 0, 0, {}, None
    spec = ctx.spec("centrifugo", "jwt", ctx.rooms)
    try:
        while held < args.max_connections:
            step = min(args.max_step, args.max_connections - held)
            progress(f"max connections: {held} held, opening {step} more")
            result = await ctx.loadgen.open(spec, step, args.burst_concurrency, min(args.deadline, 60))
            groups.append(result)
            opened += result.count
            if result.errors:
                errors, at_first_error = result.errors, opened
                break
            held = opened
        limits = process_limits(ctx)
    finally:
        for group in groups:
            await ctx.loadgen.close(group)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {"max_without_errors": held, "open_when_errors_came": at_first_error, "step": args.max_step,
            "cap": args.max_connections, "first_errors": errors,
            "limits": {"controller_nofile_soft_hard": [soft, hard],
                       "nginx": nginx_limits(ctx),
                       "open_files_soft_hard_by_process": limits,
                       "note": "each client holds 1 descriptor on the controller; each proxied "
                               "WebSocket holds 2 connections (and descriptors) in one nginx worker"}}
