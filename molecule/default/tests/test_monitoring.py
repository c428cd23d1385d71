"""Monitoring (roles/monitoring; the local inventory turns monitoring_enabled on): every scrape target of
the topology is up, the dashboards' queries return data, one scrape of the app sums all its processes, and
the exporters are private, least-privilege and hold no secret in a world-readable file. The scrape figures
are printed for the closing note. (The node-down alert, which stops an instance, runs with the day-2
operations: molecule/default/day2/test_alerts.py, so that it never breaks this session's idle hold.)
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from rtclient import dashboards, prometheus  # noqa: E402
from rtclient.auth import read_credential, stack_secrets  # noqa: E402



@pytest.fixture(scope="module")
def monitoring(manifest):
    """The first monitoring server of the manifest's topology."""
    servers = manifest["monitoring"]["servers"]
    assert manifest["monitoring"]["enabled"] and servers, "monitoring_enabled is off in this inventory"
    return servers[0]


@pytest.fixture(scope="module")
def prom(monitoring) -> str:
    """Prometheus's URL, once it answers ready."""
    url = monitoring["prometheus_url"]
    prometheus.wait_for(lambda: requests.get(f"{url}/-/ready", timeout=5).status_code == 200, 60)
    return url


def expected_jobs(manifest) -> set[str]:
    jobs = {"prometheus", "alertmanager", "centrifugo", "blackbox_https", "blackbox_django"}
    jobs |= {e["job"] for e in manifest["monitoring"]["exporters"]}
    if manifest["realtime_backend"] in ("centrifugo", "both"):
        jobs.add("blackbox_websocket")
    return jobs


def test_every_target_of_the_topology_is_up(manifest, prom):
    """Every job the topology implies is scraped, and every target is up (through the HTTP API)."""
    def all_up():
        found = prometheus.targets(prom)
        return found if found and all(t.health == "up" for t in found) else None
    try:
        found = prometheus.wait_for(all_up, 90)
    except TimeoutError:
        found = prometheus.targets(prom)
        pytest.fail("targets down: " + "; ".join(f"{t.job} {t.labels.get('instance')}: {t.last_error}"
                                                  for t in found if t.health != "up"))
    assert {t.job for t in found} == expected_jobs(manifest)
    assert len([t for t in found if t.job == "centrifugo"]) == len(manifest.centrifugo)
    assert len([t for t in found if t.job == "node"]) == len(manifest.hosts)
    up = prometheus.values(prom, "up")
    assert up and set(up.values()) == {1.0}
    # The probes' own verdicts: the site over HTTPS, the WebSocket upgrade, every gunicorn and daphne.
    probes = prometheus.values(prom, 'probe_success')
    assert probes and set(probes.values()) == {1.0}, probes
    jobs = "|".join(sorted(expected_jobs(manifest)))
    samples = prometheus.values(prom, f'scrape_samples_scraped{{job=~"{jobs}"}}')
    durations = prometheus.values(prom, f'scrape_duration_seconds{{job=~"{jobs}"}}')
    print("\nscrape per target (job host instance: duration ms, samples):")
    for key, duration in sorted(durations.items()):
        labels = dict(key)
        print(f"  {labels['job']:<20} {labels.get('host', ''):<18} {labels['instance']:<45} "
              f"{duration * 1000:7.1f} ms {samples.get(key, 0):6.0f}")


def test_the_certificate_expiry_is_known(prom):
    expiry = prometheus.values(prom, 'probe_ssl_earliest_cert_expiry{job="blackbox_https"}')
    assert expiry and all(value > time.time() + 14 * 86400 for value in expiry.values())


def test_every_dashboard_query_returns_data(prom, login, post_message, join_room):
    """Every panel of the shipped Grafana dashboards returns at least one sample (a message first, so the
    PUB/SUB lag histogram has one)."""
    session = login("alice")
    join_room(session, "monitoring")
    post_message(session, "monitoring", "a message for the dashboards")
    queries = [q for path in dashboards.dashboard_paths() for q in dashboards.panel_queries(path)]
    assert len(queries) >= 20

    def empty():
        return [f"{q.dashboard} / {q.panel} [{q.ref_id}]: {q.expr}" for q in queries
                if not prometheus.query(prom, dashboards.instant_expr(q.expr, rate_interval="1m"))]
    try:
        prometheus.wait_for(lambda: not empty(), 60, interval=5)
    except TimeoutError:
        pytest.fail("panels without data:\n" + "\n".join(empty()))


def test_one_scrape_of_the_app_sums_every_process(manifest, host_by_name):
    """Requests spread over gunicorn's workers and the daphne processes all count in the host's one scrape."""
    django = manifest["monitoring"]["exporters"]
    endpoint = next(e for e in django if e["job"] == "django")
    metrics_url = f"http://{endpoint['endpoint']}/metrics"
    # One series per server (label server: gunicorn, daphne-<port>), each summed over its processes.
    pattern = re.compile(r'^django_http_responses_total_by_status_total\{([^}]*)\} ([0-9.e+]+)$', re.M)

    def count() -> float:
        return sum(float(value) for labels, value in pattern.findall(requests.get(metrics_url, timeout=10).text)
                   if 'status="404"' in labels)
    servers = [g.url for g in manifest.gunicorn_on(endpoint["host"])] + \
        [f"http://{d.address}:{d.port}" for d in manifest.daphne_on(endpoint["host"])]
    before = count()
    urls = [f"{servers[i % len(servers)]}/rtstack-monitoring-test/{i}" for i in range(60)]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(lambda url: requests.get(url, timeout=10).status_code, urls))
    assert set(statuses) == {404}
    pids = host_by_name[endpoint["host"]].run("ls /run/chat-metrics/*/").stdout
    assert prometheus.wait_for(lambda: count() - before == 60, 10, 0.5), \
        f"one scrape counted {count() - before} of 60 requests; sample files: {pids}"


def test_exporters_answer_the_monitoring_hosts_only(manifest, host_by_name, groups):
    """From a host outside the monitoring group, no exporter, Prometheus or Alertmanager port connects; from
    the monitoring host, every exporter does (the firewall is on in this scenario)."""
    if os.environ.get("RTSTACK_FIREWALL") != "1":
        pytest.skip("the firewall is off for this inventory (RTSTACK_FIREWALL != 1)")
    monitoring = manifest["monitoring"]["servers"][0]
    outsider = next(h for h in groups["nginx"] if h not in groups.get("monitoring", []))
    ports = [(e["address"], e["port"], e["job"]) for e in manifest["monitoring"]["exporters"] if e["host"] != outsider]
    ports += [(monitoring["address"], monitoring["prometheus_port"], "prometheus"),
              (monitoring["address"], monitoring["alertmanager_port"], "alertmanager")]
    probe = "python3 -c \"import socket; socket.create_connection(('{}', {}), timeout=2).close()\""
    opened = [f"{job} {a}:{p}" for a, p, job in ports if host_by_name[outsider].run(probe.format(a, p)).rc == 0]
    assert not opened, f"{outsider} (not a monitoring host) reaches {opened}"
    inside = host_by_name[monitoring["host"]]
    closed = [f"{e['job']} {e['endpoint']}" for e in manifest["monitoring"]["exporters"]
              if inside.run(probe.format(e["address"], e["port"])).rc != 0]
    assert not closed, f"the monitoring host cannot reach {closed}"


def test_no_secret_in_a_world_readable_monitoring_file(host_by_name):
    """The exporters' and Prometheus's configuration files that anyone on the host can read hold no secret."""
    secrets = list(stack_secrets().values())
    leaks = []
    for name, host in host_by_name.items():
        files = host.run("find /etc/prometheus /etc/default /etc/mtail /etc/systemd/system -type f -perm -o=r "
                         "2>/dev/null").stdout.split()
        for path in files:
            text = host.file(path).content_string
            leaks += [f"{name}:{path}" for secret in secrets if secret and secret in text]
    assert not leaks, f"secrets in world-readable files: {leaks}"


def test_the_redis_exporter_user_reads_statistics_only(manifest, host_by_name):
    """The exporter's ACL user runs INFO, and is refused a key read, a write and a PUB/SUB subscription."""
    server = manifest.redis.servers[0]
    host = host_by_name[server.host]
    password = read_credential("redis_exporter_password")

    def run(*command: str) -> str:
        return host.run(manifest.redis.files["cli"] + " --no-auth-warning -h 127.0.0.1 -p %s --user exporter --pass %s"
                        + " %s" * len(command), str(server.port), password, *command).stdout
    assert "redis_version" in run("INFO", "server")
    for command in (("GET", "anything"), ("SET", "anything", "1"), ("PUBLISH", "rooms:x", "1"),
                    ("CONFIG", "SET", "maxclients", "1"), ("CONFIG", "GET", "masterauth"), ("SLOWLOG", "GET")):
        assert "NOPERM" in run(*command), command
