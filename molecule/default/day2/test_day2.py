"""Day-2 operations on the converged default scenario, run by its side_effect step (before verify):
what an ops engineer runs once the stack is up must work and tell the truth.

* ``--limit`` to a group and to one host of a group of several converges with ``changed=0``;
* ``--check --diff -v`` on the whole stack, given one changed setting in each file that holds a secret, reports
  rc 0 and only the changes those settings make, and shows no secret (the diffs are computed, never printed);
* ``--check --diff`` on a host converged before monitoring was switched on (its exporter and metrics unit
  removed) reports what it would install, rc 0, and the converge after it installs and starts them;
* a tier playbook run alone (``playbooks/nginx.yml``, the whole inventory) works, ``changed=0``;
* a changed nginx setting applied with ``--limit nginx`` reaches the nginx host, and only it;
* converging one host while another host of the stack is stopped succeeds, with a warning that names
  the stopped host (its address comes from the fact cache);
* a rolling restart (playbooks/rolling_upgrade.yml) takes each Centrifugo instance out of every upstream that lists
  it, in this scenario's l4 mode the site's and nginx.conf's stream block, and leaves none marked down.

Each run's wall time is printed (``day2: ... s``). The scenario's host_vars move ports off their
defaults, so every run also re-renders the upstreams, proxies and firewall rules from the topology.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from rtclient import auth, hosts  # noqa: E402
from rtclient.manifest import load_manifest  # noqa: E402
from rtclient.playbook import PlaybookRun, run_playbook  # noqa: E402

MANIFEST = load_manifest()
GROUPS = ("redis", "centrifugo", "django", "nginx")
STACK_HOSTS = sorted(MANIFEST.hosts)


def limits() -> list[str]:
    """A whole group (django, whose play takes the other tiers' addresses from the fact cache), and one host of
    each group with several (its peers stay outside the play; the hosts of a group are alike, so one stands for
    all). Each run costs about a minute, so the other groups are not repeated; nginx's ``--limit`` run is
    :func:`test_limit_converges_one_host_while_another_is_down`, which asserts ``changed=0`` too."""
    out = ["django"]
    for group in GROUPS:
        members = MANIFEST.hosts_in(group)
        if len(members) > 1:
            out.append(members[-1])
    return out


def timed(label: str, run: PlaybookRun) -> PlaybookRun:
    print(f"day2: {label}: {run.seconds:.1f} s, rc {run.returncode}, changed {run.changed() or 0}")
    return run


def assert_no_change(run: PlaybookRun, expected_hosts: set[str]) -> None:
    assert run.returncode == 0, run.tail()
    assert set(run.recap) - {"localhost"} == expected_hosts, (sorted(run.recap), run.tail(1500))
    assert run.changed() == {}, f"changed on a converged stack: {run.changed()}\n{run.tail()}"


@pytest.mark.parametrize("limit", limits())
def test_limit_to_one_host_or_group_changes_nothing(limit):
    members = set(MANIFEST.hosts_in(limit)) if limit in GROUPS else {limit}
    run = timed(f"site.yml --limit {limit}", run_playbook("site.yml", "--limit", limit))
    assert_no_change(run, members)


#: One setting in each file that holds a secret (redis.conf, config.json, chat.env), with the groups whose hosts
#: write that file and the tasks and handlers that may report the change.
SECRET_FILE_SETTINGS = {
    "redis_loglevel=verbose": ("redis", ("redis.conf", "Restart redis")),
    "centrifugo_log_level=debug": ("centrifugo", ("config.json", "Restart centrifugo",
                                                  "restart | Restart one instance")),
    "django_log_level=DEBUG": ("django", ("environment file", "Restart gunicorn", "Restart daphne",
                                          "Restart the metrics exporter")),
}


def test_check_diff_changes_only_what_it_is_told_and_shows_no_secret():
    """A dry run with diffs and ``-v`` on the whole converged stack: rc 0; the hosts of the files the settings
    touch report their change, by the tasks that write those files and their handlers only, every other host
    ``changed=0``; no secret in the output (the tasks that write secrets compute their diff but never show it)."""
    extra = [arg for setting in SECRET_FILE_SETTINGS for arg in ("-e", setting)]
    run = timed("site.yml --check --diff -v (one setting changed in each file holding a secret)",
                run_playbook("site.yml", "--check", "--diff", "-v", *extra))
    assert run.returncode == 0, run.tail()
    assert set(run.recap) - {"localhost"} == set(STACK_HOSTS), run.tail(1500)
    touched = {host for group, _ in SECRET_FILE_SETTINGS.values() for host in MANIFEST.hosts_in(group)}
    assert set(run.changed()) == touched, run.changed()
    allowed = [task for _, tasks in SECRET_FILE_SETTINGS.values() for task in tasks]
    unexpected = {task: sorted(hosts) for task, hosts in run.changed_tasks().items()
                  if not any(part in task for part in allowed)}
    assert not unexpected, f"changes no setting asked for: {unexpected}"
    shown = [name for name, secret in auth.stack_secrets().items() if secret in run.output]
    assert not shown, f"printed by ansible-playbook --check --diff -v: {shown}"


def test_check_diff_on_a_host_before_its_exporters_exist():
    """Switching monitoring on for a stack converged without it: on the Django host (the node exporter's
    package, the app's metrics unit), a dry run must not fail on the units the real run installs; the real run
    then installs and starts them (verify checks that every target is up)."""
    host = MANIFEST.hosts_in("django")[0]
    units = ["chat-metrics", "prometheus-node-exporter"]
    for argv in (["systemctl", "disable", "--now", *units],
                 ["rm", "-f", "/etc/systemd/system/chat-metrics.service"], ["systemctl", "daemon-reload"],
                 ["apt-get", "purge", "-y", "-q", "prometheus-node-exporter"]):
        hosts.exec_in(host, argv, timeout=180)
    check = timed(f"site.yml --check --diff --limit {host} (exporters removed)",
                  run_playbook("site.yml", "--check", "--diff", "--limit", host))
    converge = timed(f"site.yml --limit {host} (exporters back)", run_playbook("site.yml", "--limit", host))
    assert check.returncode == 0, check.tail()
    assert set(check.changed()) == {host}, check.changed()
    assert converge.returncode == 0, converge.tail()
    for unit in units:
        assert hosts.exec_in(host, ["systemctl", "is-active", unit], check=False).stdout.strip() == "active", unit


def test_a_tier_playbook_runs_alone():
    run = timed("nginx.yml alone", run_playbook("nginx.yml"))
    assert_no_change(run, set(MANIFEST.hosts_in("nginx")))


def test_a_changed_nginx_setting_reaches_only_nginx():
    nginx = MANIFEST.hosts_in("nginx")
    site = "/etc/nginx/sites-available/chat.conf"
    try:
        run = timed("site.yml --limit nginx (changed setting)",
                    run_playbook("site.yml", "--limit", "nginx", "-e", "nginx_static_expires=2h"))
        assert run.returncode == 0, run.tail()
        assert set(run.changed()) == set(nginx), run.changed()
        for host in nginx:
            assert "expires 2h;" in hosts.exec_in(host, ["cat", site]).stdout
        static = requests.get(f"{MANIFEST.site_url}/static/chat/chat.css", verify=auth.ca_file(), timeout=10)
        assert static.status_code == 200 and "max-age=7200" in static.headers.get("Cache-Control", "")
    finally:
        back = timed("site.yml --limit nginx (setting back)",
                     run_playbook("site.yml", "--limit", "nginx", "--tags", "nginx_configure"))
    assert back.returncode == 0, back.tail()
    for host in nginx:
        assert "expires 1h;" in hosts.exec_in(host, ["cat", site]).stdout


def wait_healthy(urls: list[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending and time.monotonic() < deadline:
        try:
            if requests.get(pending[0], timeout=2).status_code == 200:
                pending.pop(0)
                continue
        except requests.RequestException:
            pass
        time.sleep(1)
    assert not pending, f"not healthy within {timeout:.0f} s: {pending}"


def test_limit_converges_one_host_while_another_is_down():
    stopped = MANIFEST.hosts_in("centrifugo")[-1]
    target = MANIFEST.hosts_in("nginx")[0]
    hosts.docker("kill", stopped, timeout=60)  # the host dies, as a crashed or unplugged server does
    try:
        # ansible-core's own strategy: under mitogen's, the preflight's ping of a dead host outside the run ends the
        # run despite ignore_unreachable (conftest.py, README "Tests").
        run = timed(f"site.yml --limit {target} with {stopped} stopped",
                    run_playbook("site.yml", "--limit", target, env={"ANSIBLE_STRATEGY": "linear"}))
    finally:
        hosts.docker("start", stopped, timeout=120)
        wait_healthy([i.health_url for i in MANIFEST.centrifugo if i.host == stopped], timeout=120)
    assert run.returncode == 0, run.tail()
    assert set(run.recap) - {"localhost"} == {target}, run.tail()
    assert run.changed() == {}, run.tail()
    warning = "[WARNING]: Hosts of the stack outside this run do not answer: " + stopped
    assert warning in " ".join(run.output.split()), run.tail(6000)


def test_rolling_restart_marks_each_instance_down_in_every_upstream():
    run = timed("rolling_upgrade.yml (a rolling restart)", run_playbook("rolling_upgrade.yml"))
    assert run.returncode == 0, run.tail()
    files = ["/etc/nginx/sites-available/chat.conf"] + (["/etc/nginx/nginx.conf"] if MANIFEST.centrifugo_mode == "l4" else [])
    for path in files:
        marked = re.findall(rf"changed: \[[^]]*\] => \(item=\S+ {re.escape(path)}\)", run.output)
        # Each instance marked down, then up again: two changes per instance and nginx host.
        assert len(marked) == 2 * len(MANIFEST.centrifugo) * len(MANIFEST.nginx), (path, run.tail(4000))
    for host in MANIFEST.hosts_in("nginx"):
        for path in files:
            assert " down;" not in hosts.exec_in(host, ["cat", path]).stdout, f"{host}:{path} keeps a member down"
