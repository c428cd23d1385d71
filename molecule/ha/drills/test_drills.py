"""Failure drills of the scaled-out stack, under load, run by the scenario's side_effect step.

The load (drills/load.py): 30 Centrifugo subscribers through nginx on ``rooms:lobby`` (history and
recovery on), which fill their gaps from the database like the room page does, and a chat message
posted through Django every 100 ms (each acknowledged post is a committed row, published through the
outbox). Each drill breaks something real, then asks the database what was committed and counts, per
subscriber, the rows it got by neither the live path nor a gap fill. In this order (pytest runs them as
defined; test_failures.py follows):

* a Centrifugo node killed with SIGKILL: its clients reconnect through nginx to the others and
  recover (https://centrifugal.dev/docs/getting-started/recovery); resubscribe time (goal <= 2 s,
  reported), lost (asserted 0);
* the Redis master's host killed (``docker kill``): Sentinel promotes a replica and Centrifugo follows
  it; time until every client receives new messages (goal <= 10 s, reported), publications acknowledged
  by the old master but missing from the new one's history (reported), lost end to end (asserted 0),
  and a converge of the Redis tier afterwards changes nothing (asserted);
* (the rolling upgrade of every Centrifugo instance under load is the secret rotation drill's step 3,
  test_rotation.py);
* nginx reloaded three times: connections dropped (asserted 0), lost (asserted 0).

Figures are printed and written to build/ha-drills.json (conftest). Every wait is bounded in time.
"""

from __future__ import annotations

import asyncio
import time

from rtclient import prometheus
from rtclient.hosts import docker
from rtclient.playbook import run_playbook
from rtclient.publish import node_client_counts

from .load import CLIENTS
from .support import (blocking, history_seqs, http_ok, replica_in_sync, report, run, sentinel_master,
                      sentinel_timeline, wait_until)


async def node_clients(nodes, api_key: str) -> dict[str, int]:
    """Node name -> its client count (Centrifugo's info API of a node that answers)."""
    return await node_client_counts([node.api_url for node in nodes], api_key)


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
    window = run(loop, load.start_window())
    run(loop, asyncio.sleep(2.0))
    killed_at = time.monotonic()
    blocking(loop, docker, "exec", victim.host, "systemctl", "kill", "--signal=SIGKILL", victim.unit)
    run(loop, load.wait_moved(killed_at, counts[victim.name], 15))
    run(loop, load.wait_all_subscribed(30))
    run(loop, asyncio.sleep(3.0))
    run(loop, load.stop_publishing())
    times = load.resubscribe_times(killed_at)
    tally = run(loop, window.tally())
    report(figures, "kill_centrifugo_node", node=victim.name, clients_on_node=counts.get(victim.name, 0),
           clients_resubscribed=len(times), resubscribe_max_s=round(max(times, default=0), 2),
           resubscribe_goal_s=2, recovered=sum(load.recovered_flags(killed_at)), **tally)
    # systemd restarts the killed instance (Restart=on-failure); the next drill starts from a whole cluster.
    wait_until(lambda: http_ok(victim.health_url), 60, what=f"{victim.name} back after the kill", loop=loop)
    assert times and all(t != float("inf") for t in times), "a client did not resubscribe"
    assert tally["lost"] == 0, f"committed messages lost by clients: {tally}"


def test_kill_the_redis_master(loop, load, manifest, nodes, api_key, figures):
    """docker kill the Redis master's host; Sentinel promotes a replica, Centrifugo follows it, and
    every committed message reaches every client (live, by recovery, or by a gap fill).

    Reported: the time until new messages reach the first and every client while the old master's host
    is down (goal 10 s), and the publications acknowledged by the old master that the new one's history
    lacks (Redis replication is asynchronous; the clients get those from the database). Asserted: 0 lost
    end to end, and the old host rejoins as a synced replica.
    """
    master_ip, _ = sentinel_master(manifest)
    server = next(item for item in manifest.redis.servers if item.address == master_ip)
    victim = server.host
    window = run(loop, load.start_window())
    run(loop, asyncio.sleep(2.0))
    killed_wall = time.time()
    # The load runs during the kill: times count from its end (the daemon waits for the container to exit).
    blocking(loop, docker, "kill", victim)
    killed_at = time.monotonic()
    try:
        first_s = run(loop, load.delivery_resumed(killed_at, every_client=False, timeout=60))
        all_down_s = run(loop, load.delivery_resumed(killed_at, every_client=True, timeout=45))
        new_master = wait_until(lambda: (master := sentinel_master(manifest))[0] != master_ip and master, 60,
                                what="a new master", loop=loop)
        run(loop, asyncio.sleep(3.0))
    finally:
        blocking(loop, docker, "start", victim)
    run(loop, load.stop_publishing(drain=15.0))
    tally = run(loop, window.tally())
    in_history = run(loop, history_seqs([node.api_url for node in nodes], api_key, load.channel))
    acked = [seq for seq, t in load.acked.items() if t >= window.started]
    # The publications the new master's history lacks (within what the history keeps).
    missing_from_redis = sorted(seq for seq in acked if seq not in in_history
                                and (not in_history or seq >= min(in_history)))
    report(figures, "kill_redis_master", old_master=victim, new_master=new_master[0],
           delivery_resumed_first_client_s=round(first_s, 2) if first_s != float("inf") else "not within 60 s",
           delivery_resumed_all_clients_s=round(all_down_s, 2) if all_down_s != float("inf") else "not within 45 s",
           resume_goal_s=10, acknowledged_not_in_new_master_history=len(missing_from_redis),
           clients_resubscribed=len(load.resubscribe_times(killed_at)),
           recovered=sum(load.recovered_flags(killed_at)),
           sentinel_timeline=sentinel_timeline(manifest, killed_wall), **tally)
    # The old master's host comes back as a replica of the new one (Sentinel reconfigures it).
    wait_until(lambda: docker("exec", victim, "systemctl", "is-system-running").strip() in ("running", "degraded"),
               90, what=f"{victim} booted", loop=loop)
    wait_until(lambda: sentinel_master(manifest)[0] != server.address, 30,
               what="the master to stay on the promoted replica", loop=loop)
    # Until Sentinel has demoted the returned host, a node still pointed at its address could write to
    # it and lose those writes in the resync: the next drill starts only once it is a synced replica.
    wait_until(lambda: replica_in_sync(server), 90, what=f"{victim} to be a synced replica", loop=loop)
    run(loop, load.wait_all_subscribed(60))
    # A converge after the failover keeps the promoted master and changes nothing (changed=0).
    converge = blocking(loop, run_playbook, "redis.yml")
    figures["kill_redis_master"]["redis_converge_after_failover_changed"] = converge.changed()
    assert converge.returncode == 0, converge.tail()
    assert not converge.changed(), f"converging Redis after the failover changed {converge.changed()}"
    assert sentinel_master(manifest)[0] == new_master[0], "the converge moved the master back"
    assert tally["lost"] == 0, f"committed messages lost by clients: {tally}"
    # Monitoring saw the failover: RedisMasterChanged reached the alert sink (roles/monitoring).
    alert = wait_until(lambda: prometheus.first_notification(
        manifest["monitoring"]["servers"][0]["host"], "RedisMasterChanged", "firing", killed_wall), 90,
        interval=2, what="RedisMasterChanged at the alert sink", loop=loop)
    figures["kill_redis_master"]["master_changed_alert_after_kill_s"] = round(alert.received - killed_wall, 1)
    print(f"\n[kill_redis_master] RedisMasterChanged at the sink {alert.received - killed_wall:.1f} s after the kill")


def test_reload_nginx_under_load(loop, load, manifest, figures):
    """Three nginx reloads while the posts go on: no connection drops, nothing lost."""
    nginx = manifest.nginx[0].host
    window = run(loop, load.start_window())
    run(loop, asyncio.sleep(2.0))
    started = time.monotonic()
    for _ in range(3):
        blocking(loop, docker, "exec", nginx, "systemctl", "reload", "nginx")
        run(loop, asyncio.sleep(2.0))
    run(loop, asyncio.sleep(3.0))
    run(loop, load.stop_publishing())
    dropped = load.disconnects(started)
    tally = run(loop, window.tally())
    report(figures, "nginx_reload", reloads=3, connections=CLIENTS, dropped=dropped, **tally)
    assert dropped == 0, f"{dropped} connection drops during nginx reloads"
    assert tally["lost"] == 0 and tally["refused"] == {}, f"lost or refused during nginx reloads: {tally}"
