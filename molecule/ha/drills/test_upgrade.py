"""The last drill, under the same load (drills/load.py): one Centrifugo host upgraded in place from
Debian 12 to Debian 13, the way README "Upgrading a host to Debian 13" describes it.

The host's container is recreated from the Debian 13 image on the same address (rtclient.hosts.recreate:
a reinstalled server keeps its name and private address, and nothing of its old disk), then
``site.yml --limit <host>`` converges it. Asserted: the converge succeeds, the host runs Debian 13, its
instances rejoin the cluster (every node in Centrifugo's info again) and every client gets every committed
message (0 lost, none twice); no post is refused by a server (no 4xx or 5xx: only Centrifugo's host went away),
and every post sent after the converge gets its answer.

A post sent during the converge may go unanswered within the poster's 30 s: on this test bed the host being
installed shares the machine's 2 cores with the other 8 hosts and the load, and in runs where the hypervisor
stole 20-60 % of the CPU meanwhile (``cpu_steal_pct``), Django's 10 sync workers answered posts after more than
30 s (those rows were committed and delivered: ``lost`` stays 0). On real servers the installing host has its
own CPUs. Those posts are reported (``no_answer_during_converge``), not refused.

Reported: the time the host was away, the converge's duration and changed count, the clients moved. Runs last
because it leaves that host on Debian 13 for the scenario's second verify, which then checks a stack of mixed
releases.
"""

from __future__ import annotations

import asyncio
import time

from rtclient.hosts import exec_in, recreate
from rtclient.playbook import run_playbook
from rtclient.publish import node_client_counts

from .support import blocking, http_ok, report, run, wait_until

#: The image of the release the host moves to (scripts/build-image.sh trixie; `make images` builds it).
DEBIAN13_IMAGE = "rtstack/debian13-systemd:latest"


def os_release(host: str) -> dict[str, str]:
    """The host's /etc/os-release as a dict (``VERSION_ID``, ``VERSION_CODENAME``, ...)."""
    text = exec_in(host, ["cat", "/etc/os-release"]).stdout
    return {key: value.strip('"') for key, _, value in (line.partition("=") for line in text.splitlines()) if key}


async def every_node_listed(nodes, api_key: str, timeout: float) -> dict[str, int]:
    """Centrifugo's info (node name -> clients) once it lists every node; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = await node_client_counts([node.api_url for node in nodes], api_key)
        if len(found) == len(nodes):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"Centrifugo's info lists {sorted(found)}, not every node, after {timeout:.0f} s")
        await asyncio.sleep(1.0)


def test_upgrade_a_centrifugo_host_to_debian_13(loop, load, manifest, nodes, api_key, figures):
    host = manifest.hosts_in("centrifugo")[-1]
    before = os_release(host)
    assert before["VERSION_ID"] == "12", f"{host} should start on Debian 12 (molecule/ha/molecule.yml): {before}"
    on_host = [node for node in nodes if node.host == host]
    window = run(loop, load.start_window())
    run(loop, asyncio.sleep(2.0))
    started = time.monotonic()

    def reinstall_and_converge():
        recreate(host, DEBIAN13_IMAGE)
        wait_until(lambda: exec_in(host, ["systemctl", "is-system-running"], check=False).stdout.strip()
                   in ("running", "degraded"), 90, what=f"{host} booted on Debian 13")
        result = run_playbook("site.yml", "--limit", host, timeout=900)
        if result.returncode == 0:
            for node in on_host:
                wait_until(lambda node=node: http_ok(node.health_url), 60, what=f"{node.name} healthy on Debian 13")
        return result

    # In a thread: the load's clients and posts run on this loop meanwhile (a blocking call would stall them).
    converge = blocking(loop, reinstall_and_converge)
    converged_at = time.monotonic()
    assert converge.returncode == 0, converge.tail()
    # Every node in the cluster's info again: the upgraded host's instances rejoined through Redis.
    counts = run(loop, every_node_listed(nodes, api_key, timeout=60))
    back = time.monotonic() - started
    run(loop, load.wait_all_subscribed(60))
    run(loop, asyncio.sleep(3.0))
    run(loop, load.stop_publishing(drain=15.0))
    tally = run(loop, window.tally())
    unanswered = {n: load.sent_at[n] for n, (status, seq) in load.posts.items()
                  if n >= window.first_n and seq is None and status == 0}
    unanswered_after = sorted(n for n, sent in unanswered.items() if sent > converged_at)
    after = os_release(host)
    report(figures, "upgrade_to_debian_13", host=host, before=before.get("PRETTY_NAME"),
           after=after.get("PRETTY_NAME"), host_back_s=round(back, 1), converge_s=round(converge.seconds, 1),
           converge_changed=converge.changed(), clients_moved=len(load.resubscribe_times(started)),
           node_clients=counts, no_answer_during_converge=len(unanswered) - len(unanswered_after), **tally)
    assert after["VERSION_ID"] == "13", f"{host} did not come back on Debian 13: {after}"
    assert tally["lost"] == 0, f"committed messages lost by clients: {tally}"
    assert tally["duplicates"] == 0, f"duplicated messages: {tally}"
    # Only Centrifugo's host went away: Django and the database refused no post, and answered every one once the
    # converge was over.
    refused = {status: count for status, count in tally["refused"].items() if status != "0"}
    assert not refused, f"posts refused while a Centrifugo host was upgraded: {refused}"
    assert not unanswered_after, (f"posts sent after the converge got no answer: {len(unanswered_after)} "
                                  f"(first: post {unanswered_after[0]})")
