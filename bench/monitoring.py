"""``python -m bench.monitoring``: what monitoring costs, per host of a deployed stack (monitoring_enabled):
the resident memory (bytes) and CPU (over ``--seconds``, as a share of one core) of every monitoring unit's
main process on every host: Prometheus, Alertmanager, the blackbox, node, Redis,
PostgreSQL and nginx exporters, mtail and the app's metrics exporter; and each scrape target's last
duration and sample count from Prometheus. Idle stack, the inventory's scrape interval.

Prints two Markdown tables and writes ``bench/results/monitoring-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone

from rtclient import prometheus
from rtclient.hosts import exec_in
from rtclient.manifest import load_manifest

from .stack import ROOT, machine

RESULTS = ROOT / "bench" / "results"
#: The monitoring units, whichever hosts run them.
UNITS = ("prometheus", "prometheus-alertmanager", "prometheus-blackbox-exporter", "prometheus-node-exporter",
         "prometheus-redis-exporter", "prometheus-postgres-exporter", "prometheus-nginx-exporter", "mtail",
         "chat-metrics")


#: Reads, for every active unit of UNITS: its name, then its main process's resident memory (kB) and CPU time
#: (utime + stime, clock ticks) from /proc (the test hosts' containers have no per-unit cgroup accounting).
PROBE = r"""
for unit in "$@"; do
  pid=$(systemctl show -p MainPID --value "$unit.service" 2>/dev/null)
  [ -n "$pid" ] && [ "$pid" != 0 ] || continue
  rss=$(awk '/^VmRSS:/ {print $2}' /proc/$pid/status)
  cpu=$(awk '{print $14 + $15}' /proc/$pid/stat)
  echo "$unit $rss $cpu"
done
"""
#: Clock ticks per second of /proc/<pid>/stat.
TICKS = 100


def usage(host: str) -> dict[str, tuple[int, float]]:
    """``{unit: (resident memory bytes, CPU seconds so far)}`` of the monitoring units running on ``host``
    (their main process)."""
    out: dict[str, tuple[int, float]] = {}
    for line in exec_in(host, ["sh", "-c", PROBE, "probe", *UNITS]).stdout.splitlines():
        unit, rss_kb, ticks = line.split()
        out[unit] = (int(rss_kb) * 1024, int(ticks) / TICKS)
    return out


def main(argv: list[str] | None = None) -> None:
    """Measure for ``--seconds`` (default 60) and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="CPU measurement window")
    args = parser.parse_args(argv)
    manifest = load_manifest()
    assert manifest["monitoring"]["enabled"], "monitoring_enabled is off in this stack"
    hosts = sorted(manifest.hosts)
    before = {h: usage(h) for h in hosts}
    started = time.monotonic()
    time.sleep(args.seconds)
    after = {h: usage(h) for h in hosts}
    elapsed = time.monotonic() - started
    rows = []
    for host in hosts:
        for unit, (memory, cpu) in sorted(after[host].items()):
            cpu_share = (cpu - before[host].get(unit, (0, cpu))[1]) / elapsed
            rows.append({"host": host, "unit": unit, "memory_bytes": memory, "cpu_share": round(cpu_share, 4)})
    prom = manifest["monitoring"]["servers"][0]["prometheus_url"]
    targets = [{"job": t.job, "host": t.labels.get("host", ""), "instance": t.labels.get("instance", ""),
                "scrape_ms": round(t.scrape_duration * 1000, 1)} for t in prometheus.targets(prom)]
    samples = prometheus.values(prom, "scrape_samples_scraped")
    for t in targets:
        t["samples"] = int(next((v for k, v in samples.items() if dict(k).get("instance") == t["instance"]
                                 and dict(k).get("job") == t["job"]), 0))
    print(f"\n## Monitoring units per host (memory now; CPU over {elapsed:.0f} s, share of one core)\n")
    print("| host | unit | memory (MiB) | CPU (%) |\n|---|---|---:|---:|")
    for row in rows:
        print(f"| {row['host']} | {row['unit']} | {row['memory_bytes'] / 2**20:.1f} | {row['cpu_share'] * 100:.2f} |")
    per_host: dict[str, list[float]] = {}
    for row in rows:
        per_host.setdefault(row["host"], [0.0, 0.0])
        per_host[row["host"]][0] += row["memory_bytes"]
        per_host[row["host"]][1] += row["cpu_share"]
    print("\n| host | monitoring memory (MiB) | monitoring CPU (%) |\n|---|---:|---:|")
    for host, (memory, cpu) in per_host.items():
        print(f"| {host} | {memory / 2**20:.1f} | {cpu * 100:.2f} |")
    print("\n## Scrape targets (last scrape)\n")
    print("| job | host | instance | duration (ms) | samples |\n|---|---|---|---:|---:|")
    for t in sorted(targets, key=lambda t: (t["job"], t["host"], t["instance"])):
        print(f"| {t['job']} | {t['host']} | {t['instance']} | {t['scrape_ms']} | {t['samples']} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"monitoring-{stamp}.json"
    path.write_text(json.dumps({"machine": machine(), "seconds": elapsed, "units": rows, "targets": targets}, indent=2))
    print(f"\nwritten: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
