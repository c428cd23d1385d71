"""More failure drills under the same load (drills/load.py), after test_drills.py's:

* one of the two Django hosts killed (``docker kill``): posts, connects and Centrifugo's proxy calls go
  on through the other (nginx's upstreams skip the dead host); refused connects after 5 s (goal 0,
  asserted), lost (asserted 0);
* PostgreSQL stopped for 20 s: posts are refused with a 503 and a clear error, none half-saved
  (asserted), and the app serves again by itself once PostgreSQL is back (asserted; time reported);
* one Centrifugo host cut off from Redis only (its packets to the Redis and sentinel ports dropped):
  the instances' watchdogs notice, drain them, and their clients move to the other nodes; detection
  time and the time until every client receives again (goal 15 s) reported, lost (asserted 0); the
  watchdogs start the instances again once the cut is undone (asserted);
* every Centrifugo instance stopped for 20 s while Django keeps posting through the outbox: every
  message arrives after the restart, none twice, in order (asserted).
"""

from __future__ import annotations

import asyncio
import time

import pytest
import requests

from rtclient import auth, prometheus
from rtclient.centrifugo import CentrifugoConnection, websocket_url
from rtclient.hosts import docker

from .support import blocking, cut_from_redis, http_ok, report, restore_redis_path, run, unit_active, wait_until


async def fresh_connects(site_url: str, cookie: str, count: int, timeout: float = 5.0) -> list[str]:
    """Open ``count`` new Centrifugo connections through nginx (connect proxy, then the subscribe
    proxy of ``rooms:lobby``), one after the other, each closed again. Returns why each refused or
    timed-out one failed (the exception, then the client's disconnect codes and reasons, if any);
    empty when all subscribed within ``timeout`` seconds."""
    refusals = []
    for _ in range(count):
        connection = CentrifugoConnection(websocket_url(site_url), cookie=cookie, origin=site_url,
                                          ca_file=auth.ca_file(), timeout=timeout)
        started = time.monotonic()
        try:
            await connection.subscribe("rooms:lobby", timeout=timeout)
        except Exception as error:  # noqa: BLE001 - a refusal of any kind counts
            disconnects = [(d.code, d.reason) for d in connection.events.disconnects]
            refusals.append(f"{error!r} after {time.monotonic() - started:.1f} s; disconnects {disconnects}")
        finally:
            await connection.close()
    return refusals


def test_kill_a_django_host(loop, load, manifest, site_url, figures):
    """docker kill one Django host: after 5 s, no connect is refused and no post fails."""
    django_hosts = manifest.hosts_in("django")
    if len(django_hosts) < 2:
        pytest.skip("one Django host: nothing to fail over to")
    victim = django_hosts[-1]
    window = run(loop, load.start_window())
    run(loop, asyncio.sleep(2.0))
    blocking(loop, docker, "kill", victim)
    killed_at = time.monotonic()
    try:
        run(loop, asyncio.sleep(5.0))
        settled_n = load.n + 1
        refusals = run(loop, fresh_connects(site_url, str(load.cookie), 10))
        run(loop, asyncio.sleep(5.0))
        run(loop, load.stop_publishing())
        tally = run(loop, window.tally())
        failed_after_5s = sum(1 for n, (status, seq) in load.posts.items() if n >= settled_n and seq is None)
    finally:
        # Back and healthy before anything else, even when the drill failed: the next drills need both hosts.
        blocking(loop, docker, "start", victim)
        gunicorn = manifest.gunicorn_on(victim)[0]
        wait_until(lambda: http_ok(f"{gunicorn.url}/healthz"), 120, what=f"gunicorn healthy on {victim}", loop=loop)
    report(figures, "kill_django_host", host=victim, refused_connects_after_5s=len(refusals), connects_tried=10,
           failed_posts_after_5s=failed_after_5s, clients_resubscribed=len(load.resubscribe_times(killed_at)),
           **tally)
    assert not refusals and failed_after_5s == 0, \
        f"refused after 5 s: {len(refusals)} connects {refusals}, {failed_after_5s} posts"
    assert tally["lost"] == 0, f"committed messages lost by clients: {tally}"


def test_stop_postgresql(loop, load, manifest, site_url, figures):
    """systemctl stop postgresql for 20 s: posts answer 503 with a clear error, nothing is half-saved,
    and the app serves again without a restart."""
    host = manifest.postgresql[0].host
    window = run(loop, load.start_window())
    run(loop, asyncio.sleep(2.0))
    blocking(loop, docker, "exec", host, "systemctl", "stop", "postgresql")
    stopped_at = time.monotonic()
    try:
        run(loop, asyncio.sleep(3.0))
        # The poster's own request (JSON mode, session, CSRF), sent once more to read the answer.
        answer = requests.post(load.poster.url, data={"text": "while the database is down"},
                               headers=load.poster.headers, verify=auth.ca_file(), timeout=10)
        page = requests.get(f"{site_url}/rooms/lobby/", headers={"Cookie": str(load.cookie)}, verify=auth.ca_file(),
                            timeout=10)
        run(loop, asyncio.sleep(max(0.0, 20.0 - (time.monotonic() - stopped_at))))
    finally:
        blocking(loop, docker, "exec", host, "systemctl", "start", "postgresql")
    started_at = time.monotonic()
    recovered_s = None
    while time.monotonic() - started_at < 60:
        if any(status == 201 for n, (status, _) in load.posts.items() if n > window.first_n
               and load.posts_at.get(n, 0) > started_at):
            recovered_s = round(time.monotonic() - started_at, 2)
            break
        run(loop, asyncio.sleep(0.2))
    run(loop, asyncio.sleep(3.0))
    run(loop, load.stop_publishing())
    tally = run(loop, window.tally())
    report(figures, "stop_postgresql", seconds_down=20, api_answer=answer.status_code,
           page_answer=page.status_code, posts_again_after_start_s=recovered_s, **tally)
    assert answer.status_code == 503 and answer.json() == {"error": "database unavailable, try again"}, answer.text
    assert page.status_code == 503 and "database is unavailable" in page.text, page.text[:300]
    assert set(tally["refused"]) <= {"503"}, f"posts refused other than with a 503: {tally['refused']}"
    assert tally["half_saved"] == 0, f"refused posts whose message was saved: {tally}"
    assert recovered_s is not None, "no post succeeded within 60 s of PostgreSQL's start"
    assert tally["lost"] == 0, f"committed messages lost by clients: {tally}"


def test_cut_a_centrifugo_host_from_redis(loop, load, manifest, nodes, figures):
    """Drop one Centrifugo host's packets to Redis and the sentinels: its watchdogs drain its
    instances, the clients move and receive again; undone, the watchdogs start them again."""
    host = max(manifest.hosts_in("centrifugo"), key=lambda h: len(manifest.centrifugo_on(h)))
    units = [node.unit for node in manifest.centrifugo_on(host)]
    # The alert this cut must fire may still be firing from an earlier Redis event (it looks back 2 min, and a
    # failover makes PUB/SUB errors too): wait until it is not, so that the cut's own notification can be told.
    monitoring = manifest["monitoring"]["servers"][0]
    quiet_started = time.monotonic()
    wait_until(lambda: not prometheus.firing(monitoring["prometheus_url"], "CentrifugoRedisPubSubErrors",
                                             {"host": host}), 180, interval=2,
               what=f"CentrifugoRedisPubSubErrors on {host} to resolve before the cut", loop=loop)
    quiet_wait_s = round(time.monotonic() - quiet_started, 1)
    window = run(loop, load.start_window())
    run(loop, asyncio.sleep(2.0))
    cut_wall = time.time()
    cut = blocking(loop, cut_from_redis, host, manifest)
    cut_at = time.monotonic()  # the load ran during the command: times count from the rules' arrival
    try:
        wait_until(lambda: not any(unit_active(host, unit) for unit in units), 60, interval=0.2,
                   what=f"the watchdogs to drain {', '.join(units)}", loop=loop)
        detected_s = time.monotonic() - cut_at
        receiving_s = run(loop, load.delivery_resumed(cut_at + detected_s, every_client=True, timeout=30))
        run(loop, asyncio.sleep(2.0))
    finally:
        blocking(loop, restore_redis_path, host)
    restored_at = time.monotonic()
    wait_until(lambda: all(unit_active(host, unit) for unit in units), 60, interval=0.5,
               what=f"the watchdogs to start {', '.join(units)} again", loop=loop)
    restarted_s = time.monotonic() - restored_at
    for node in manifest.centrifugo_on(host):
        wait_until(lambda node=node: http_ok(node.health_url), 60, what=f"{node.name} healthy", loop=loop)
    run(loop, load.stop_publishing())
    tally = run(loop, window.tally())
    receiving_total = detected_s + receiving_s
    report(figures, "cut_centrifugo_host_from_redis", host=host, instances=len(units), cut=cut,
           detected_s=round(detected_s, 2),
           clients_receiving_again_s=round(receiving_total, 2) if receiving_s != float("inf") else "not within 30 s",
           receiving_goal_s=15, restarted_after_restore_s=round(restarted_s, 2),
           clients_resubscribed=len(load.resubscribe_times(cut_at)), **tally)
    assert receiving_s != float("inf"), "some clients received nothing within 30 s of the drain"
    assert tally["lost"] == 0, f"committed messages lost by clients: {tally}"
    # Monitoring saw the cut: CentrifugoRedisPubSubErrors for the cut host, started after the cut, reached the
    # alert sink (about 11 s after the cut: errors scraped from about 3 s, the watchdog's drain at about 8 s).
    alert = wait_until(lambda: prometheus.first_notification(
        monitoring["host"], "CentrifugoRedisPubSubErrors", "firing", cut_wall, {"host": host}), 90,
        interval=2, what=f"CentrifugoRedisPubSubErrors for {host} at the alert sink", loop=loop)
    figures["cut_centrifugo_host_from_redis"].update(
        pub_sub_errors_alert_after_cut_s=round(alert.received - cut_wall, 1), alert_quiet_wait_s=quiet_wait_s)


def test_every_centrifugo_instance_down(loop, load, nodes, figures):
    """Stop every Centrifugo instance for 20 s while Django posts through the outbox: after the
    restart every message arrives, none twice, in order."""
    window = run(loop, load.start_window())
    run(loop, asyncio.sleep(2.0))
    stopped_at = time.monotonic()
    try:
        for node in nodes:
            blocking(loop, docker, "exec", node.host, "systemctl", "stop", "--no-block", node.unit)
        wait_until(lambda: not any(unit_active(node.host, node.unit) for node in nodes), 60, interval=0.5,
                   what="every instance stopped", loop=loop)
        run(loop, asyncio.sleep(max(0.0, 20.0 - (time.monotonic() - stopped_at))))
    finally:
        for node in nodes:
            blocking(loop, docker, "exec", node.host, "systemctl", "start", node.unit)
    started_at = time.monotonic()
    for node in nodes:
        wait_until(lambda node=node: http_ok(node.health_url), 60, what=f"{node.name} healthy", loop=loop)
    run(loop, load.wait_all_subscribed(60))
    resubscribed_s = time.monotonic() - started_at
    run(loop, asyncio.sleep(3.0))
    run(loop, load.stop_publishing(drain=20.0))
    tally = run(loop, window.tally())
    posted_while_down = sum(1 for seq, t in load.acked.items() if stopped_at <= t <= started_at)
    report(figures, "every_centrifugo_down", seconds_down=round(started_at - stopped_at, 1),
           committed_while_down=posted_while_down, all_resubscribed_after_start_s=round(resubscribed_s, 2), **tally)
    assert posted_while_down > 0, "no message was committed while Centrifugo was down: the drill proves nothing"
    assert tally["lost"] == 0, f"committed messages lost by clients: {tally}"
    assert tally["duplicates"] == 0 and tally["out_of_order"] == 0, f"duplicated or out of order: {tally}"
