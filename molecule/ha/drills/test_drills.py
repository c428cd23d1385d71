"""Failure drills of the scaled-out stack, under load, run by the scenario's side_effect step.

Subscribers (centrifuge-python, session-cookie auth through Centrifugo's connect and subscribe
proxies) connect through nginx's published port and subscribe to one ``rooms:`` channel (history
and recovery on: ``force_recovery``); a publisher sends a numbered message every 100 ms through
Centrifugo's HTTP API (``cent``), falling over to the next node when one does not answer. Each drill
breaks something real, then counts, per subscriber, the acknowledged publications it never got:

* a Centrifugo node killed with SIGKILL: its clients reconnect through nginx to the others and
  recover what they missed (https://centrifugal.dev/docs/getting-started/recovery);
  time until every client is resubscribed (goal <= 5 s, reported), lost (asserted 0);
* the Redis master's host killed (``docker kill``): Sentinel promotes a replica and Centrifugo
  follows it; time until delivery resumes (goal <= 15 s, reported), lost after recovery (reported:
  Redis replication is asynchronous, so what the dead master had not passed on may be gone);
* ``playbooks/rolling_upgrade.yml`` (a config change) while the load runs: lost (asserted 0);
* nginx reloaded three times: connections dropped (asserted 0), lost (asserted 0).

Figures are printed and written to build/ha-drills.json. Every wait is bounded in time.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis.sentinel
from cent import AsyncClient, InfoRequest, PublishRequest
from centrifuge import (
    Client,
    ClientEventHandler,
    DisconnectedContext,
    PublicationContext,
    SubscribedContext,
    SubscribingContext,
    SubscriptionEventHandler,
)

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from tests import rtclient  # noqa: E402

INVENTORY = os.environ.get("RTSTACK_INVENTORY") or os.environ.get("MOLECULE_INVENTORY_FILE", "")
SITE_URL = os.environ.get("RTSTACK_SITE_URL", "https://127.0.0.1:28443").rstrip("/")
FIGURES = ROOT / "build" / "ha-drills.json"
#: Subscribers (all from this machine's one address: within nginx's per-address limits).
CLIENTS = 30
#: Seconds between two publications.
PUBLISH_INTERVAL = 0.1
#: An existing room (the subscribe proxy refuses unknown rooms); API publications bypass the
#: publish proxy, so the drill messages are not stored in the room.
CHANNEL = "rooms:lobby"


def docker(*args: str, timeout: float = 60) -> str:
    """Run the Docker CLI (the project's engine) and return its output; raise on failure."""
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True,
                          timeout=timeout).stdout


@dataclass
class Node:
    """One Centrifugo instance: its host (container), node name and ports."""

    host: str
    address: str
    name: str
    port: int
    internal_port: int

    @property
    def unit(self) -> str:
        return f"centrifugo@{self.port}.service"

    @property
    def api_url(self) -> str:
        return f"http://{self.address}:{self.internal_port}/api"


def centrifugo_nodes(groups: dict[str, list[str]]) -> list[Node]:
    """Every instance of every Centrifugo host, from the instances' environment files on the hosts."""
    return [Node(host, rtclient.container_address(host), env["CENTRIFUGO_NODE_NAME"],
                 int(env["CENTRIFUGO_HTTP_SERVER_PORT"]), int(env["CENTRIFUGO_HTTP_SERVER_INTERNAL_PORT"]))
            for host in groups["centrifugo"] for env in rtclient.centrifugo_instances(host)]


@dataclass
class Subscriber(SubscriptionEventHandler):
    """Records what one client received (seq -> receipt time) and its subscription states."""

    received: dict[int, float] = field(default_factory=dict)
    subscribing: list[float] = field(default_factory=list)
    subscribed: list[tuple[float, bool, bool]] = field(default_factory=list)  # (t, was_recovering, recovered)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_publication(self, ctx: PublicationContext) -> None:  # noqa: D102
        seq = (ctx.pub.data or {}).get("seq")
        if isinstance(seq, int):
            self.received.setdefault(seq, time.monotonic())

    async def on_subscribing(self, ctx: SubscribingContext) -> None:  # noqa: D102
        self.subscribing.append(time.monotonic())
        self.ready.clear()

    async def on_subscribed(self, ctx: SubscribedContext) -> None:  # noqa: D102
        self.subscribed.append((time.monotonic(), ctx.was_recovering, ctx.recovered))
        self.ready.set()


@dataclass
class Connection(ClientEventHandler):
    """Records one client's disconnects (Centrifugo's disconnect codes)."""

    disconnects: list[tuple[float, int, str]] = field(default_factory=list)

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:  # noqa: D102
        self.disconnects.append((time.monotonic(), ctx.code, ctx.reason))


class Load:
    """Subscribers through nginx and a publisher every PUBLISH_INTERVAL seconds, with failover
    over the given Centrifugo API URLs. ``acked`` maps seq -> the time the API acknowledged it."""

    def __init__(self, nodes: list[Node], api_key: str, cookie: str) -> None:
        self.nodes = nodes
        self.api_key = api_key
        self.cookie = cookie
        self.clients: list[tuple[Client, Connection, Subscriber]] = []
        self.acked: dict[int, float] = {}
        self.failed: dict[int, str] = {}
        self.seq = 0
        self._publishing: asyncio.Task | None = None
        self._apis: list[AsyncClient] = []  # made in connect(): aiohttp needs the running loop
        self._api_index = 0

    async def connect(self) -> None:
        self._apis = [AsyncClient(node.api_url, self.api_key, timeout=2.0) for node in self.nodes]
        ws_url = SITE_URL.replace("https", "wss", 1) + rtclient.WEBSOCKET_PATH
        ca_file = str(Path(os.environ["RTSTACK_CREDENTIALS_DIR"]) / "tls" / "ca.crt")
        for _ in range(CLIENTS):
            connection = Connection()
            client = Client(ws_url, events=connection, headers={"Cookie": self.cookie, "Origin": SITE_URL},
                            timeout=10.0, max_reconnect_delay=2.0, proxy=None,
                            ssl_context=ssl.create_default_context(cafile=ca_file))
            subscriber = Subscriber()
            self.clients.append((client, connection, subscriber))
            await client.connect()
            sub = client.new_subscription(CHANNEL, events=subscriber)
            await sub.subscribe()
        await self.wait_all_subscribed(30)

    async def _publish_one(self, seq: int) -> None:
        request = PublishRequest(channel=CHANNEL, data={"seq": seq, "text": f"drill message {seq}"})
        for attempt in range(len(self._apis)):
            api = self._apis[(self._api_index + attempt) % len(self._apis)]
            try:
                await api.publish(request)
            except Exception as exc:  # noqa: BLE001 - any failure: try the next node
                self.failed[seq] = f"{type(exc).__name__}: {exc}"
                continue
            self._api_index = (self._api_index + attempt) % len(self._apis)
            self.failed.pop(seq, None)
            self.acked[seq] = time.monotonic()
            return

    async def _publish(self) -> None:
        next_at = time.monotonic()
        while True:
            self.seq += 1
            asyncio.ensure_future(self._publish_one(self.seq))
            next_at += PUBLISH_INTERVAL
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    def start_publishing(self) -> None:
        self._publishing = asyncio.ensure_future(self._publish())

    async def stop_publishing(self, drain: float = 5.0) -> None:
        """Stop, then wait (at most ``drain`` s) until every acknowledged message has arrived."""
        if self._publishing:
            self._publishing.cancel()
            self._publishing = None
        await asyncio.sleep(1.0)
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline and self.lost(min(self.acked, default=0)):
            await asyncio.sleep(0.2)

    def tally(self, since_seq: int) -> dict[str, int]:
        """The drill window's counts from ``since_seq`` on: publications acknowledged, publications
        refused by every node, messages lost (acknowledged, never received; summed over clients)
        and clients that lost any."""
        lost = self.lost(since_seq)
        return {"published": len([seq for seq in self.acked if seq >= since_seq]),
                "publish_errors": len([seq for seq in self.failed if seq >= since_seq]),
                "lost": sum(len(seqs) for seqs in lost.values()), "clients_with_losses": len(lost)}

    def lost(self, since_seq: int) -> dict[int, list[int]]:
        """Client index -> acknowledged seqs >= since_seq it did not receive."""
        acked = [seq for seq in self.acked if seq >= since_seq]
        out = {}
        for index, (_, _, subscriber) in enumerate(self.clients):
            missing = sorted(seq for seq in acked if seq not in subscriber.received)
            if missing:
                out[index] = missing
        return out

    def resubscribe_times(self, since: float) -> list[float]:
        """For every client that lost its subscription after ``since``: seconds from ``since``
        until it was subscribed again (inf if it was not)."""
        times = []
        for _, _, subscriber in self.clients:
            if any(t >= since for t in subscriber.subscribing):
                back = [t for t, _, _ in subscriber.subscribed if t >= since]
                times.append((back[-1] - since) if back and subscriber.ready.is_set() else float("inf"))
        return times

    def outages(self, since: float) -> list[float]:
        """Seconds each subscription lost after ``since`` took to be subscribed again."""
        out = []
        for _, _, subscriber in self.clients:
            for lost_at in (t for t in subscriber.subscribing if t >= since):
                back = [t for t, _, _ in subscriber.subscribed if t >= lost_at]
                out.append(back[0] - lost_at if back else float("inf"))
        return out

    def recovered_flags(self, since: float) -> list[bool]:
        return [recovered for _, _, subscriber in self.clients
                for t, was_recovering, recovered in subscriber.subscribed if t >= since and was_recovering]

    def disconnects(self, since: float) -> int:
        return sum(1 for _, connection, _ in self.clients for t, _, _ in connection.disconnects if t >= since) + \
            sum(1 for _, _, subscriber in self.clients for t in subscriber.subscribing if t >= since)

    async def wait_moved(self, since: float, count: int, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until ``count`` clients lost their subscription after ``since``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(1 for _, _, s in self.clients if any(t >= since for t in s.subscribing)) >= count:
                return
            await asyncio.sleep(0.05)

    async def delivery_resumed(self, after: float, every_client: bool, timeout: float) -> float:
        """Seconds from ``after`` until a message acknowledged after ``after`` reached the first
        client (or every client); inf when not within ``timeout`` seconds. Publishing must run."""
        deadline = after + timeout
        while time.monotonic() < deadline:
            fresh = {seq for seq, t in self.acked.items() if t > after}
            times = [min((s.received[seq] for seq in fresh if seq in s.received), default=None)
                     for _, _, s in self.clients]
            got = [t for t in times if t is not None]
            if got and (not every_client or len(got) == len(times)):
                return (max(got) if every_client else min(got)) - after
            await asyncio.sleep(0.1)
        return float("inf")

    async def wait_all_subscribed(self, timeout: float) -> None:
        await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for _, _, s in self.clients)), timeout)

    async def close(self) -> None:
        for client, _, _ in self.clients:
            await client.disconnect()
        for api in self._apis:
            await api.close()


async def node_clients(nodes: list[Node], api_key: str) -> dict[str, int]:
    """Node name -> its client count, from Centrifugo's ``info`` API of a node that answers."""
    for node in nodes:
        async with AsyncClient(node.api_url, api_key, timeout=3.0) as api:
            try:
                result = await api.info(InfoRequest())
            except Exception:  # noqa: BLE001 - ask the next node
                continue
            return {item.name: item.num_clients for item in result.nodes}
    raise RuntimeError("no Centrifugo node answered the info API")


def wait_until(predicate, timeout: float, interval: float = 1.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - not yet
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def http_ok(url: str) -> bool:
    import requests

    return requests.get(url, timeout=2).status_code == 200


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def groups():
    return rtclient.ansible_groups(INVENTORY)


@pytest.fixture(scope="module")
def nodes(groups):
    return centrifugo_nodes(groups)


@pytest.fixture(scope="module")
def api_key():
    return rtclient.read_credential("centrifugo_http_api_key")


@pytest.fixture(scope="module")
def figures():
    results: dict = {}
    yield results
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print("\nHA drill figures:\n" + json.dumps(results, indent=2, sort_keys=True))


@pytest.fixture(scope="module")
def loop():
    the_loop = asyncio.new_event_loop()
    yield the_loop
    the_loop.close()


@pytest.fixture(scope="module")
def load(loop, nodes, api_key):
    ca_file = str(Path(os.environ["RTSTACK_CREDENTIALS_DIR"]) / "tls" / "ca.crt")
    session = rtclient.django_login(SITE_URL, "alice", rtclient.read_credential("user_alice"), verify=ca_file)
    the_load = Load(nodes, api_key, rtclient.cookie_header(session))
    loop.run_until_complete(the_load.connect())
    yield the_load
    loop.run_until_complete(the_load.close())


def run(loop, coro):
    return loop.run_until_complete(coro)


async def settle(load: Load, seconds: float) -> None:
    """Publish for ``seconds`` with nothing broken (the window's first messages)."""
    load.start_publishing()
    await asyncio.sleep(seconds)


def report(figures: dict, drill: str, **values) -> None:
    figures[drill] = values
    print(f"\n[{drill}] " + ", ".join(f"{key}={value}" for key, value in values.items()))


# --- the drills -------------------------------------------------------------------------------

def test_kill_a_centrifugo_node(loop, load, nodes, api_key, figures):
    """SIGKILL the instance with the most of our clients; they come back through nginx to the
    others and recover every message they missed."""
    # Nodes share their client counts every few seconds: wait until they add up (bounded).
    deadline = time.monotonic() + 20
    counts = run(loop, node_clients(nodes, api_key))
    while sum(counts.values()) < CLIENTS and time.monotonic() < deadline:
        run(loop, asyncio.sleep(1.0))
        counts = run(loop, node_clients(nodes, api_key))
    victim = max(nodes, key=lambda node: counts.get(node.name, 0))
    assert counts.get(victim.name, 0) > 0, f"no drill client on any node: {counts}"
    first_seq = load.seq + 1
    run(loop, settle(load, 2.0))
    killed_at = time.monotonic()
    docker("exec", victim.host, "systemctl", "kill", "--signal=SIGKILL", victim.unit)
    run(loop, load.wait_moved(killed_at, counts[victim.name], 15))
    run(loop, load.wait_all_subscribed(30))
    run(loop, asyncio.sleep(3.0))
    run(loop, load.stop_publishing())
    times = load.resubscribe_times(killed_at)
    lost = load.lost(first_seq)
    report(figures, "kill_centrifugo_node", node=victim.name, clients_on_node=counts.get(victim.name, 0),
           clients_resubscribed=len(times), resubscribe_max_s=round(max(times, default=0), 2),
           resubscribe_goal_s=5, recovered=sum(load.recovered_flags(killed_at)),
           **load.tally(first_seq))
    # systemd restarts the killed instance (Restart=on-failure); the next drill starts from a whole cluster.
    wait_until(lambda: http_ok(f"http://{victim.address}:{victim.internal_port}/health"), 60,
               what=f"{victim.name} back after the kill")
    assert times and all(t != float("inf") for t in times), "a client did not resubscribe"
    assert not lost, f"messages lost by clients (client -> seqs): {lost}"


def sentinel_master(groups) -> tuple[str, int]:
    hosts = groups["redis"]
    password = rtclient.read_credential("redis_sentinel_password")
    sentinels = [(rtclient.container_address(host), 26379) for host in hosts]
    sentinel = redis.sentinel.Sentinel(sentinels, sentinel_kwargs={"password": password, "socket_timeout": 1},
                                       socket_timeout=1)
    return sentinel.discover_master("rtstack")


def replica_in_sync(host: str) -> bool:
    """Whether the Redis server on ``host`` is a replica whose link to its master is up (ROLE)."""
    server = redis.Redis(host=rtclient.container_address(host), port=6379, socket_timeout=2,
                         password=rtclient.read_credential("redis_requirepass"), decode_responses=True)
    role = server.role()
    return role[0] == "slave" and role[3] == "connected"


def test_kill_the_redis_master(loop, load, groups, figures):
    """docker kill the Redis master's host; Sentinel promotes a replica and delivery resumes.

    Reported, not asserted (timing goals are measured; Redis replication is asynchronous; and
    Centrifugo's Redis connections may keep dialing the dead master): the time until delivery resumes
    for the first client and for all clients while the old master's host is down (inf: not within
    60 s), and the messages lost after recovery. Asserted: every client receives new messages once
    the old host is back, and that host rejoins as a synced replica.
    """
    master_ip, _ = sentinel_master(groups)
    victim = next(host for host in groups["redis"] if rtclient.container_address(host) == master_ip)
    first_seq = load.seq + 1
    run(loop, settle(load, 2.0))
    killed_at = time.monotonic()
    docker("kill", victim)
    try:
        first_s = run(loop, load.delivery_resumed(killed_at, every_client=False, timeout=60))
        all_down_s = run(loop, load.delivery_resumed(killed_at, every_client=True, timeout=45))
        new_master = wait_until(lambda: (master := sentinel_master(groups))[0] != master_ip and master, 60,
                                what="a new master")
    finally:
        restarted_at = time.monotonic()
        docker("start", victim)
    # The old master's host comes back as a replica of the new one (Sentinel reconfigures it).
    wait_until(lambda: docker("exec", victim, "systemctl", "is-system-running").strip() in ("running", "degraded"),
               90, what=f"{victim} booted")
    all_back_s = run(loop, load.delivery_resumed(restarted_at, every_client=True, timeout=90))
    run(loop, load.wait_all_subscribed(60))
    run(loop, asyncio.sleep(3.0))
    run(loop, load.stop_publishing(drain=10.0))
    report(figures, "kill_redis_master", old_master=victim, new_master=new_master[0],
           delivery_resumed_first_client_s=round(first_s, 2) if first_s != float("inf") else "not within 60 s",
           delivery_resumed_all_clients_s=round(all_down_s, 2) if all_down_s != float("inf") else "not within 45 s",
           resume_goal_s=15, all_clients_after_old_host_back_s=round(all_back_s, 2),
           clients_resubscribed=len(load.resubscribe_times(killed_at)),
           recovered=sum(load.recovered_flags(killed_at)), **load.tally(first_seq))
    wait_until(lambda: sentinel_master(groups)[0] != rtclient.container_address(victim), 30,
               what="the master to stay on the promoted replica")
    # Until Sentinel has demoted the returned host, a node still pointed at its address could write to
    # it and lose those writes in the resync: the next drill starts only once it is a synced replica.
    wait_until(lambda: replica_in_sync(victim), 90, what=f"{victim} to be a synced replica")
    assert all_back_s != float("inf"), "some clients got no new message within 90 s of the old host's return"


def test_rolling_upgrade_under_load(loop, load, nodes, figures):
    """playbooks/rolling_upgrade.yml changes config.json on every node, one instance at a time,
    while the publisher runs: no subscriber loses a message."""
    first_seq = load.seq + 1
    run(loop, settle(load, 2.0))
    started = time.monotonic()
    process = subprocess.Popen(
        ["ansible-playbook", "-i", INVENTORY, str(ROOT / "playbooks" / "rolling_upgrade.yml"),
         "-e", "centrifugo_client_channel_limit=129"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    async def wait_process() -> int:
        deadline = time.monotonic() + 900
        while process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        if process.poll() is None:
            process.kill()
        return process.wait()

    rc = run(loop, wait_process())
    output = process.stdout.read()
    duration = time.monotonic() - started
    run(loop, load.wait_all_subscribed(30))
    run(loop, asyncio.sleep(3.0))
    run(loop, load.stop_publishing())
    lost = load.lost(first_seq)
    times = load.resubscribe_times(started)
    outages = load.outages(started)
    report(figures, "rolling_upgrade", instances=len(nodes), playbook_s=round(duration, 1), playbook_rc=rc,
           clients_moved=len(times), resubscriptions=len(outages),
           longest_resubscribe_s=round(max(outages, default=0), 2), recovered=sum(load.recovered_flags(started)),
           **load.tally(first_seq))
    assert rc == 0, output[-3000:]
    assert len(times) > 0, "no client was moved: the upgrade did not stop the nodes"
    assert not lost, f"messages lost by clients (client -> seqs): {lost}"
    for node in nodes:
        config = docker("exec", node.host, "cat", "/etc/centrifugo/config.json")
        assert '"channel_limit": 129' in config, f"{node.host} did not get the new config"


def test_reload_nginx_under_load(loop, load, groups, figures):
    """Three nginx reloads while the publisher runs: no connection drops, nothing lost."""
    nginx = groups["nginx"][0]
    first_seq = load.seq + 1
    run(loop, settle(load, 2.0))
    started = time.monotonic()
    for _ in range(3):
        docker("exec", nginx, "systemctl", "reload", "nginx")
        run(loop, asyncio.sleep(2.0))
    run(loop, asyncio.sleep(3.0))
    run(loop, load.stop_publishing())
    dropped = load.disconnects(started)
    lost = load.lost(first_seq)
    report(figures, "nginx_reload", reloads=3, connections=CLIENTS, dropped=dropped,
           **load.tally(first_seq))
    assert dropped == 0, f"{dropped} connection drops during nginx reloads"
    assert not lost, f"messages lost by clients (client -> seqs): {lost}"
