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
"""
from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import time
from pathlib import Path

from tests import rtclient  # the real Django login shared with the verify tests

from . import load, report
from .load import Receipts, Target, progress
from .stack import PATHS, ROOT, Stack, machine

RESULTS = ROOT / "bench" / "results"
#: Units restarted before each path's measurements, per inventory group.
RESTART = {
    "centrifugo": {"nginx": ["nginx"], "centrifugo": ["centrifugo@*"]},  # every Centrifugo instance
    "channels": {"nginx": ["nginx"], "django": ["chat-daphne@*"]},  # every daphne instance
}


def client_cpu() -> float:
    """CPU seconds (user + system) this load-generating process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


class Bench:
    """One benchmark run against a discovered stack."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stack = Stack.discover(args.inventory, args.site_url, args.credentials_dir)
        self.target = Target(self.stack.address("nginx"), args.site_url,
                             str(self.stack.credentials_dir / "tls" / "ca.crt"), args.room)
        session = rtclient.django_login(args.site_url, args.user, self.stack.credential(f"user_{args.user}"),
                                        verify=self.target.ca_file)
        # The room exists once someone joined it (the join view creates public rooms).
        session.get(f"{args.site_url}/rooms/join/", params={"name": args.room}, timeout=10).raise_for_status()
        self.session = session
        self.cookie = rtclient.cookie_header(session)
        self.channel = f"rooms:{args.room}"
        self.api_url = f"http://{self.stack.address('centrifugo')}:9000/api"
        self.api_key = self.stack.credential("centrifugo_http_api_key")
        self.redis_url = (f"redis://django:{self.stack.credential('redis_django_password')}"
                          f"@{self.stack.address('redis')}:6379/0")

    def token(self, path: str, **params) -> str:
        """A JWT from one of Django's token views (``/chat/token/``, ``/chat/token/subscription/``)."""
        response = self.session.get(f"{self.args.site_url}{path}", params=params, timeout=10)
        response.raise_for_status()
        return response.json()["token"]

    def spread_rooms(self) -> list[str]:
        """The ``--burst-rooms`` rooms burst clients are spread over (created through the join
        view). One room for thousands of clients would measure the rooms namespace's join/leave
        pushes (each subscribe is pushed to every subscriber already there: quadratic), not
        connection handling; a chat spreads its users over rooms."""
        names = [f"{self.args.room}-{k}" for k in range(self.args.burst_rooms)]
        for name in names:
            self.session.get(f"{self.args.site_url}/rooms/join/", params={"name": name},
                             timeout=10).raise_for_status()
        return names

    def maker(self, path: str, receipts: Receipts, auth: str = "cookie", rooms: list[str] | None = None):
        """``make(i)`` for open_many: a connection of ``path`` authenticated by ``auth``
        (``cookie`` or ``jwt``: connection token, and on Centrifugo a subscription token for its
        room), to room ``rooms[i % len(rooms)]`` (default: the benchmark room)."""
        rooms = rooms or [self.args.room]
        token = self.token("/chat/token/") if auth == "jwt" else None
        if path == "centrifugo":
            if token:
                sub_tokens = [self.token("/chat/token/subscription/", channel=f"rooms:{r}") for r in rooms]
                return lambda i: load.CentrifugoConn(self.target, receipts, token=token, room=rooms[i % len(rooms)],
                                                     sub_token=sub_tokens[i % len(rooms)])
            return lambda i: load.CentrifugoConn(self.target, receipts, cookie=self.cookie, room=rooms[i % len(rooms)])
        return lambda i: load.ChannelsConn(self.target, receipts, cookie=None if token else self.cookie, token=token,
                                           room=rooms[i % len(rooms)])

    def publisher(self, path: str) -> load.Publisher:
        if path == "centrifugo":
            return load.CentrifugoPublisher(self.api_url, self.api_key, self.channel)
        return load.ChannelsPublisher(self.redis_url, f"chat_room.{self.args.room}")

    def memory(self, path: str, baseline, conns: int, go_baseline: int | None = None) -> dict:
        roles = PATHS[path][:2]  # nginx + the server processes (Redis is shared by both paths)
        now = self.stack.sample(roles)
        total = sum(now.rss[r] for r in roles)
        base = sum(baseline.rss[r] for r in roles)
        out = {"connections": conns, "rss_bytes": total, "baseline_rss_bytes": base,
               "bytes_per_connection": round(total / conns) if conns else None,
               "bytes_per_connection_above_idle": round((total - base) / conns) if conns else None,
               "by_process": {r: now.rss[r] for r in roles},
               "above_idle_per_connection_by_process": {
                   r: round((now.rss[r] - baseline.rss[r]) / conns) if conns else None for r in roles}}
        if go_baseline is not None:
            live = self.stack.go_memory()
            out["centrifugo_go_inuse_bytes"] = live
            out["centrifugo_go_inuse_per_connection"] = round((live - go_baseline) / conns) if conns else None
        return out

    async def fanout(self, path: str, receipts: Receipts, subscribers: int) -> dict:
        args = self.args
        receipts.reset()
        publisher = self.publisher(path)
        roles = PATHS[path]
        before, client_before = self.stack.sample(roles), client_cpu()
        progress(f"{path}: fan-out, {args.messages} messages at {args.rate}/s to {subscribers} subscribers")
        try:
            failed = await load.publish_at_rate(publisher.send, receipts, args.rate, args.messages, args.size)
            expected = (args.messages - failed) * subscribers
            await load.drain(receipts, expected, args.drain_timeout)
        finally:
            await publisher.close()
        after = self.stack.sample(roles)
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
            "server_cpu_seconds": round(cpu, 3),
            "server_cpu_seconds_by_process": {r: round(after.cpu[r] - before.cpu[r], 3) for r in roles},
            "deliveries_per_server_cpu_second": round(receipts.delivered / cpu) if cpu > 0 else None,
            "client_cpu_seconds": round(client_seconds, 3),
            "latency_ms": {"p50": ms(load.percentile(receipts.latencies, 50)),
                           "p99": ms(load.percentile(receipts.latencies, 99)),
                           "max": ms(max(receipts.latencies, default=None))},
        }

    async def django_latency(self, path: str, receipts: Receipts, subscribers: int) -> dict:
        args = self.args
        receipts.reset()
        post = load.django_poster(self.session, args.site_url, args.room)
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
        await load.drain(receipts, (args.django_messages - errors) * subscribers, 15)
        # Per message: the last subscriber's receipt minus the time Django saved it.
        last = [receipts.last_by_seq[s] - receipts.first_ts(s) for s in receipts.last_by_seq]
        first = [receipts.first_by_seq[s] - receipts.first_ts(s) for s in receipts.first_by_seq]
        complete = sum(1 for s, n in receipts.count_by_seq.items() if n == subscribers)
        return {"subscribers": subscribers, "messages": args.django_messages, "post_errors": errors,
                "messages_reaching_every_subscriber": complete,
                "last_subscriber_ms": {"p50": ms(load.percentile(last, 50)), "p99": ms(load.percentile(last, 99))},
                # The first receipt: the server path alone, before the one client process has
                # decoded the other subscribers' copies of the same message.
                "first_subscriber_ms": {"p50": ms(load.percentile(first, 50)), "p99": ms(load.percentile(first, 99))},
                "every_delivery_ms": {"p50": ms(load.percentile(receipts.latencies, 50)),
                                      "p99": ms(load.percentile(receipts.latencies, 99))},
                "form_post_ms_p50": ms(load.percentile(request_seconds, 50))}

    async def burst(self, path: str, auth: str, count: int) -> tuple[dict, list]:
        receipts = Receipts()
        make = self.maker(path, receipts, auth, self.rooms)
        progress(f"{path}: burst of {count} connect+subscribe ({auth}) over {len(self.rooms)} rooms")
        roles = PATHS[path] + ("gunicorn",)  # the connect and subscribe proxies run in gunicorn
        before, client_before = self.stack.sample(roles), client_cpu()
        result = await load.open_many(make, count, concurrency=self.args.burst_concurrency,
                                      deadline=self.args.deadline, label=f"{path} burst ({auth})")
        after, client_seconds = self.stack.sample(roles), client_cpu() - client_before
        server = after.cpu_since(before, roles)
        opened = len(result.conns)
        return {"auth": auth, "clients": count, "rooms": len(self.rooms), "connected": opened, "errors": result.errors,
                "error_count": sum(result.errors.values()), "seconds": round(result.seconds, 3),
                "connections_per_second": round(opened / result.seconds) if result.seconds else None,
                "handshake_ms": {"p50": ms(load.percentile(result.handshakes, 50)),
                                 "p99": ms(load.percentile(result.handshakes, 99))},
                "server_cpu_seconds": round(server, 3),
                "server_cpu_seconds_by_process": {r: round(after.cpu[r] - before.cpu[r], 3) for r in roles},
                "connections_per_server_cpu_second": round(opened / server) if server > 0 else None,
                "client_cpu_seconds": round(client_seconds, 3)}, result.conns

    async def path(self, path: str) -> dict:
        """Every measurement of one path; all its connections are closed at the end."""
        args = self.args
        out: dict = {}
        # Fresh server processes for each path, so that both start from the same state and the
        # idle baseline of the memory figures is a real idle (Go and Python keep freed memory).
        progress(f"{path}: restarting nginx and the {path} servers")
        self.stack.restart(RESTART[path])
        await asyncio.sleep(5)  # daphne and Centrifugo finish starting; nginx upstreams settle
        baseline = self.stack.sample(PATHS[path])
        go_baseline = self.stack.go_memory() if path == "centrifugo" else None
        out["idle_memory"] = await self.idle_memory(path, baseline, go_baseline)
        receipts = Receipts()
        progress(f"{path}: opening {args.subscribers} subscribers of one room")
        opened = await load.open_many(self.maker(path, receipts), args.subscribers, concurrency=200,
                                      deadline=args.deadline, label=f"{path} subscribers")
        subs = opened.conns
        try:
            if opened.errors:
                progress(f"{path}: subscriber errors {opened.errors}")
            await asyncio.sleep(3)
            out["fanout"] = await self.fanout(path, receipts, len(subs))
            out["django_latency"] = await self.django_latency(path, receipts, len(subs))
        finally:
            await load.close_many(subs)
        await asyncio.sleep(2)
        out["burst"] = []
        for auth in (["proxy", "jwt"] if path == "centrifugo" else ["cookie"]):
            result, conns = await self.burst(path, "jwt" if auth == "jwt" else "cookie", args.burst)
            result["auth"] = auth
            out["burst"].append(result)
            await load.close_many(conns)
            await asyncio.sleep(2)
        return out

    async def idle_memory(self, path: str, baseline, go_baseline: int | None) -> list[dict]:
        """Memory with ``--idle-connections`` (1000 and 5000) idle JWT-authenticated clients
        spread over the burst rooms, on freshly restarted servers: measured first, before any
        other load leaves freed memory in the processes."""
        receipts, conns, figures = Receipts(), [], []
        make = self.maker(path, receipts, "jwt", self.rooms)
        try:
            for target in self.args.idle_connections:
                progress(f"{path}: idle memory, opening up to {target} connections")
                result = await load.open_many(make, target - len(conns), concurrency=200,
                                              deadline=self.args.deadline, label=f"{path} idle")
                conns += result.conns
                await asyncio.sleep(5)
                figure = self.memory(path, baseline, len(conns), go_baseline)
                figure["errors"] = result.errors
                figures.append(figure)
        finally:
            await load.close_many(conns)
        await asyncio.sleep(2)
        return figures

    async def max_connections(self) -> dict:
        """Open Centrifugo connections (JWT) through nginx in steps of ``--max-step`` until a step
        has errors or ``--max-connections`` are open; report the largest count held with no
        error, how many were open when the first errors came, and the limits that bound it."""
        args = self.args
        receipts, conns, held, errors, at_first_error = Receipts(), [], 0, {}, None
        make = self.maker("centrifugo", receipts, "jwt", self.rooms)
        try:
            while held < args.max_connections:
                step = min(args.max_step, args.max_connections - held)
                progress(f"max connections: {held} held, opening {step} more")
                result = await load.open_many(make, step, concurrency=args.burst_concurrency,
                                              deadline=min(args.deadline, 60), label="max connections")
                conns += result.conns
                if result.errors:
                    errors, at_first_error = result.errors, len(conns)
                    break
                held = len(conns)
            limits = self.process_limits()
        finally:
            await load.close_many(conns)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return {"max_without_errors": held, "open_when_errors_came": at_first_error, "step": args.max_step,
                "cap": args.max_connections, "first_errors": errors,
                "limits": {"controller_nofile_soft_hard": [soft, hard],
                           "nginx": self.nginx_limits(),
                           "open_files_soft_hard_by_process": limits,
                           "note": "each client holds 1 descriptor on the controller; each proxied "
                                   "WebSocket holds 2 connections (and descriptors) in one nginx worker"}}

    def process_limits(self) -> dict:
        """``Max open files`` (soft, hard) of one process of each server role, from /proc."""
        found, processes = {}, self.stack.processes()
        for role in ("nginx", "centrifugo", "daphne"):
            pids = self.stack.pids(role, processes)
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

    def nginx_config(self) -> str:
        return subprocess.run(["docker", "exec", self.stack.groups["nginx"][0], "nginx", "-T"],
                              capture_output=True, text=True, timeout=30).stdout

    def check_exempt(self) -> None:
        """Fail early unless nginx exempts this controller from its per-address limits (the
        local inventory does under RTSTACK_BENCH=1); else thousands of connects get 429."""
        gateway = self.stack._docker.containers.get(self.stack.groups["nginx"][0]).attrs[
            "NetworkSettings"]["Networks"]
        gateway = next(iter(gateway.values()))["Gateway"]
        if f"{gateway} 0;" not in self.nginx_config():
            raise SystemExit(f"nginx limits connections per address and this controller ({gateway}) is not exempt: "
                             "deploy with RTSTACK_BENCH=1 (`make bench` does; or `RTSTACK_BENCH=1 make up`)")

    def nginx_limits(self) -> dict:
        conf = self.nginx_config()
        found = {}
        for key in ("worker_processes", "worker_connections", "worker_rlimit_nofile"):
            for line in conf.splitlines():
                parts = line.strip().rstrip(";").split()
                if parts and parts[0] == key:
                    found[key] = parts[1]
                    break
        return found


async def run_load(args: argparse.Namespace) -> dict:
    bench = Bench(args)
    bench.check_exempt()
    bench.rooms = bench.spread_rooms()
    results: dict = {"paths": {}}
    for path in args.paths:
        results["paths"][path] = await bench.path(path)
    if args.max_connections > 0:
        results["max_connections"] = await bench.max_connections()
    return results


def versions(stack: Stack) -> dict:
    def run(host: str, *cmd: str) -> str:
        out = subprocess.run(["docker", "exec", host, *cmd], capture_output=True, text=True, timeout=30)
        return (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr).strip() else ""
    return {
        "centrifugo": run(stack.groups["centrifugo"][0], "/usr/local/bin/centrifugo", "version"),
        "nginx": run(stack.groups["nginx"][0], "nginx", "-v"),
        "redis": run(stack.groups["redis"][0], "redis-server", "--version"),
        "daphne": run(stack.groups["django"][0], "/srv/chat/venv/bin/python", "-c",
                      "import daphne, channels, channels_redis, django; print('daphne', daphne.__version__, "
                      "'channels', channels.__version__, 'channels_redis', channels_redis.__version__, "
                      "'django', django.__version__)"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--inventory", default="inventories/local/hosts.yml")
    parser.add_argument("--site-url", default="https://127.0.0.1:8443")
    parser.add_argument("--credentials-dir", default=None,
                        help="the inventory's generated secrets (default: credentials/ beside the inventory)")
    parser.add_argument("--user", default="alice")
    parser.add_argument("--room", default="bench")
    parser.add_argument("--paths", default="centrifugo,channels", type=lambda s: s.split(","))
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100, help="fan-out messages per path")
    parser.add_argument("--rate", type=float, default=10.0, help="fan-out messages per second")
    parser.add_argument("--size", type=int, default=100, help="payload bytes")
    parser.add_argument("--drain-timeout", type=float, default=60.0, help="seconds to wait for deliveries")
    parser.add_argument("--django-messages", type=int, default=10)
    parser.add_argument("--burst", type=int, default=5000)
    parser.add_argument("--idle-connections", default="1000,5000",
                        type=lambda v: [int(x) for x in v.split(",")], help="idle memory at these counts")
    parser.add_argument("--burst-concurrency", type=int, default=500)
    parser.add_argument("--burst-rooms", type=int, default=100,
                        help="rooms the burst and max-connections clients are spread over")
    parser.add_argument("--max-connections", type=int, default=15000, help="0 skips the measurement")
    parser.add_argument("--max-step", type=int, default=1000)
    parser.add_argument("--deadline", type=float, default=180.0, help="seconds to open a batch of connections")
    parser.add_argument("--skip-deploy", action="store_true", help="leave out the deployment timing")
    parser.add_argument("--deploy-strategies", default="default,mitogen")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)

    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    started = time.time()
    deployment = None
    if not args.skip_deploy:
        from . import deploy  # times cold and warm site.yml; leaves the stack deployed

        progress("deployment: cold and warm site.yml")
        deployment = deploy.measure(args.deploy_strategies.split(","))
    stack = Stack.discover(args.inventory, args.site_url, args.credentials_dir)
    results = asyncio.run(run_load(args))
    document = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started),
        "machine": machine(),
        "versions": versions(stack),
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
