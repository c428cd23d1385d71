"""``python -m bench.transports``: Centrifugo's three bidirectional transports side by side, with
the official JavaScript SDK under Node (rtclient.node; the Python load client speaks WebSocket only),
through nginx over HTTPS, on a stack deployed with ``RTSTACK_BENCH=1`` (nginx's per-address limits
exempt the controller).

1. delivery latency: one client per transport, all subscribed to one room; ``--messages`` chat
   messages posted through Django at ``--rate`` per second; per transport p50/p99/max of the time
   from the POST to the SDK's ``publication`` event (one machine, one clock), and losses;
2. idle hold: those clients, after ``--hold`` seconds without data, still connected (no reconnect)
   and receiving again;
3. memory per connection: for each transport in turn, nginx and every Centrifugo instance restarted
   (a Go process keeps freed memory, so the previous transport's connections would be counted as
   free room for the next), then ``--connections`` clients (a connection JWT, each with its
   server-side personal subscription, no room; one Node process) opened on the idle servers: VmRSS of
   nginx and of the Centrifugo processes above the baseline taken just before, per connection
   (bytes), the Go runtime's heap + stacks in use per connection (Centrifugo's metrics), and the
   Node process's own RSS and CPU seconds beside them.

Prints one Markdown table per figure and writes ``bench/results/transports-<UTC time>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import time
from datetime import datetime, timezone
from pathlib import Path

from rtclient import auth, node
from rtclient.publish import post_message

from .load import percentile, progress
from .stack import ROOT, Stack, machine

RESULTS = ROOT / "bench" / "results"
#: Restarted before each transport's memory figure, per inventory group.
RESTART = {"nginx": ["nginx"], "centrifugo": ["centrifugo@*"]}


def node_usage(pid: int) -> tuple[int, float]:
    """RSS bytes and CPU seconds (user + system) of a live Node process, from /proc (proc(5))."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latency(stack: Stack, session, ca_file: str, args: argparse.Namespace) -> dict:
    """Figures 1 and 2 (see the module docstring)."""
    room = f"bench-transports-{int(time.time())}"
    session.get(f"{stack.site_url}/rooms/join/", params={"name": room}, timeout=10).raise_for_status()
    cookie, channel = auth.cookie_header(session), f"rooms:{room}"
    clients = {name: node.NodeClients(node.transports(stack.site_url, (name,)), node.emulation_url(stack.site_url),
                                      cookie=cookie, origin=stack.site_url, channels=[channel], ca_file=ca_file)
               for name in node.TRANSPORTS}
    try:
        for each in clients.values():
            each.wait_ready(timeout=30)
        progress(f"latency: {args.messages} messages at {args.rate}/s through Django")
        sent: dict[int, float] = {}
        start = time.monotonic()
        for number in range(args.messages):
            time.sleep(max(0.0, start + number / args.rate - time.monotonic()))
            at = time.time()
            sent[post_message(session, stack.site_url, room, f"m{number}")["id"]] = at
        time.sleep(2)
        out = {}
        for name, each in clients.items():
            got = {e["data"]["id"]: e["t"] / 1000 for e in each.publications(channel) if e["data"].get("id") in sent}
            ms = sorted((got[i] - sent[i]) * 1000 for i in got)
            out[name] = {"messages": len(sent), "received": len(got), "lost": len(sent) - len(got),
                         "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99), "max_ms": ms[-1] if ms else None}
        progress(f"idle hold: {args.hold} s without data")
        time.sleep(args.hold)
        at = time.time()
        after = post_message(session, stack.site_url, room, "after the hold")["id"]
        for name, each in clients.items():
            event = each.wait_for(lambda e: e["event"] == "publication" and e["data"].get("id") == after, 5,
                                  "the message after the hold")
            out[name]["hold_seconds"] = args.hold
            out[name]["hold_reconnects"] = each.stats()["reconnects"]
            out[name]["after_hold_ms"] = round((event["t"] / 1000 - at) * 1000, 1)
        return out
    finally:
        for each in clients.values():
            each.close()


def memory(stack: Stack, session, ca_file: str, args: argparse.Namespace) -> dict:
    """Figure 3 (see the module docstring)."""
    roles = ("nginx", "centrifugo")
    out = {}
    for name in node.TRANSPORTS:
        progress(f"memory: restarting nginx and Centrifugo before {name}")
        stack.restart(RESTART)
        time.sleep(args.settle)
        before, go_before = stack.sample(roles), stack.go_memory()
        token = auth.connection_token(session, stack.site_url)  # lives django_jwt_ttl: one per phase
        progress(f"memory: {args.connections} {name} connections")
        clients = node.NodeClients(node.transports(stack.site_url, (name,)), node.emulation_url(stack.site_url),
                                   token=token, origin=stack.site_url, count=args.connections, quiet=True,
                                   ca_file=ca_file)
        try:
            clients.wait_ready(timeout=args.open_timeout)
            time.sleep(args.settle)
            now, go_now = stack.sample(roles), stack.go_memory()
            node_rss, node_cpu = node_usage(clients.pid)
            stats = clients.stats()
            out[name] = {
                "connections": stats["connected"],
                "bytes_per_connection": {r: round((now.rss[r] - before.rss[r]) / args.connections) for r in roles},
                "centrifugo_go_inuse_per_connection": round((go_now - go_before) / args.connections),
                "server_cpu_seconds": round(now.cpu_since(before, roles), 2),
                "node_client_rss_bytes": node_rss,
                "node_client_cpu_seconds": round(node_cpu, 2),
            }
            out[name]["bytes_per_connection"]["total"] = sum(out[name]["bytes_per_connection"].values())
        finally:
            clients.close(timeout=30)
    return out


def table(rows: dict, columns: list[tuple[str, str]]) -> str:
    """A Markdown table: one row per transport, ``columns`` as (header, key path with dots)."""
    def get(row: dict, path: str):
        for key in path.split("."):
            row = row.get(key) if isinstance(row, dict) else None
        return "" if row is None else (f"{row:.1f}" if isinstance(row, float) else str(row))
    lines = ["| transport | " + " | ".join(h for h, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(get(row, key) for _, key in columns) + " |" for name, row in rows.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transports", description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", help="stack manifest (default: RTSTACK_MANIFEST or build/<stack>/stack.json)")
    parser.add_argument("--user", default="alice")
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="messages per second")
    parser.add_argument("--hold", type=float, default=65.0, help="seconds of the idle hold")
    parser.add_argument("--connections", type=int, default=1000, help="connections per transport (memory)")
    parser.add_argument("--open-timeout", type=float, default=120.0, help="seconds to open them")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before each memory sample")
    args = parser.parse_args(argv)
    if not 0 < args.messages <= 10_000 or not 0 < args.connections <= 20_000:
        parser.error("--messages at most 10000, --connections at most 20000")
    stack = Stack.discover(args.manifest)
    ca_file = str(stack.credentials_dir / "tls" / "ca.crt")
    session = auth.django_login(stack.site_url, args.user, stack.credential(f"user_{args.user}"), verify=ca_file)
    node.ensure_installed()
    result = {"machine": machine(), "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "parameters": vars(args), "versions": stack.manifest.versions}
    result["latency"] = latency(stack, session, ca_file, args)
    result["memory"] = memory(stack, session, ca_file, args)
    result["controller_cpu_seconds"] = round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 2)
    print(table(result["latency"], [("received", "received"), ("lost", "lost"), ("p50 ms", "p50_ms"),
                                    ("p99 ms", "p99_ms"), ("max ms", "max_ms"), ("hold s", "hold_seconds"),
                                    ("reconnects in hold", "hold_reconnects"), ("after hold ms", "after_hold_ms")]))
    print()
    print(table(result["memory"], [("connections", "connections"), ("nginx B/conn", "bytes_per_connection.nginx"),
                                   ("Centrifugo B/conn", "bytes_per_connection.centrifugo"),
                                   ("total B/conn", "bytes_per_connection.total"),
                                   ("Go in use B/conn", "centrifugo_go_inuse_per_connection"),
                                   ("server CPU s", "server_cpu_seconds"), ("Node RSS B", "node_client_rss_bytes"),
                                   ("Node CPU s", "node_client_cpu_seconds")]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"transports-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
