"""What the monitoring role computes from the stack topology (Ansible filter plugins; pure functions,
unit-tested in tests/test_plugins.py):

* ``rtstack_scrape_configs(topology, host)``: the ``scrape_configs`` of the Prometheus on ``host``.
* ``rtstack_blackbox_site(topology)``: the public site's URL parts the blackbox probes send.
* ``rtstack_exporter(topology, host, jobs)``: the listener of the exporter a tier's role runs on ``host``.

Every target carries a ``host`` label (the inventory host); ``instance`` stays "address:port", or the
probed URL for the blackbox jobs (roles/monitoring/README.md, "Scrape jobs").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

#: The blackbox exporter's modules (roles/monitoring/templates/etc/prometheus/blackbox.yml.j2).
SITE_MODULES = {True: "site_https", False: "site_http"}
WEBSOCKET_MODULES = {True: "websocket_upgrade_tls", False: "websocket_upgrade"}
ALIVE_MODULE = "django_alive"


def blackbox_site(topo: Mapping[str, Any]) -> dict[str, str]:
    """The public site as the blackbox probes present themselves to nginx: the site's host name (TLS
    server name and ``Host`` header) and origin (the WebSocket upgrade's ``Origin``, which Centrifugo
    checks against its allowed_origins).

    Args:
        topo: a topology (rtstack_topology.topology).

    Returns:
        ``{"server_name": str, "host_header": str, "origin": str}``; empty strings when the topology has
        no public origin (then nginx's default server answers and Centrifugo sees no Origin).
    """
    site = topo.get("site_url") or ""
    if not site:
        return {"server_name": "", "host_header": "", "origin": ""}
    parts = urlsplit(site)
    return {"server_name": parts.hostname or "", "host_header": parts.netloc, "origin": f"{parts.scheme}://{parts.netloc}"}


def exporter(topo: Mapping[str, Any], host: str, jobs: str | Sequence[str]) -> dict[str, Any]:
    """The exporter that ``host`` runs for one of ``jobs``, as the topology lists it: the first, in the topology's
    order, whose job is ``jobs`` (a job name) or one of them (a list: a Redis host runs the server's exporter
    or, if it runs only a sentinel, the sentinel's).

    Args:
        topo: a topology (rtstack_topology.topology).
        host: an inventory host name.
        jobs: a scrape job name (``node``, ``redis``, ``redis_sentinel``, ``postgresql``, ``nginx``,
            ``nginx_log``, ``django``) or a list of them.

    Returns:
        ``{job, host, address, port, endpoint, variable}`` (``endpoint`` is "address:port"); ``{}`` when
        monitoring is off or ``host`` runs none of them.
    """
    wanted = {jobs} if isinstance(jobs, str) else set(jobs)
    for entry in topo["monitoring"]["exporters"]:
        if entry["host"] == host and entry["job"] in wanted:
            return dict(entry)
    return {}


def _static(job: str, targets: list[tuple[str, dict[str, str]]], **extra: Any) -> dict[str, Any] | None:
    if not targets:
        return None
    return {"job_name": job, **extra,
            "static_configs": [{"targets": [target], "labels": labels} for target, labels in targets]}


def _probe(job: str, module: str, targets: list[tuple[str, dict[str, str]]], blackbox: str) -> dict[str, Any] | None:
    relabel = [
        {"source_labels": ["__address__"], "target_label": "__param_target"},
        {"source_labels": ["__param_target"], "target_label": "instance"},
        {"target_label": "__address__", "replacement": blackbox},
    ]
    return _static(job, targets, metrics_path="/probe", params={"module": [module]}, relabel_configs=relabel)


def scrape_configs(topo: Mapping[str, Any], host: str, site_path: str = "/",
                   centrifugo_interval: str = "") -> list[dict[str, Any]]:
    """The ``scrape_configs`` of the Prometheus on monitoring host ``host``.

    Jobs (each only when the topology has its targets): prometheus, alertmanager, centrifugo (every
    present instance's internal /metrics, label ``node``), node, redis, redis_sentinel, postgresql, nginx,
    nginx_log, django (one target per Django host: all its processes), blackbox_https (each nginx host's
    site), blackbox_websocket (a WebSocket upgrade on each nginx host, when Centrifugo serves clients) and
    blackbox_django (each gunicorn and daphne listener, label ``server``), the probes through the
    blackbox exporter on ``host``'s loopback.

    Args:
        topo: a topology (rtstack_topology.topology) with monitoring enabled.
        host: an inventory host of the topology's monitoring servers.
        site_path: the path of the public site the blackbox_https probe GETs (expects 200, no redirect).
        centrifugo_interval: the centrifugo job's own scrape interval (a Prometheus duration); empty: the global one.

    Returns:
        A list of Prometheus scrape configs (``job_name``, ``static_configs`` with ``labels``, and for the
        probes ``metrics_path``, ``params``, ``relabel_configs``).

    Raises:
        ValueError: ``host`` is not a monitoring server of the topology.
    """
    servers = {s["host"]: s for s in topo["monitoring"]["servers"]}
    if host not in servers:
        raise ValueError(f"{host} is not in the monitoring group of the stack topology")
    blackbox = f"127.0.0.1:{servers[host]['blackbox_port']}"
    jobs = [
        _static("prometheus", [(f"{s['address']}:{s['prometheus_port']}", {"host": s["host"]})
                               for s in servers.values()]),
        _static("alertmanager", [(f"{s['address']}:{s['alertmanager_port']}", {"host": s["host"]})
                                 for s in servers.values()]),
        _static("centrifugo", [(f"{i['address']}:{i['internal_port']}", {"host": i["host"], "node": i["name"]})
                               for i in topo["centrifugo"] if i["state"] == "present"],
                **({"scrape_interval": centrifugo_interval} if centrifugo_interval else {})),
    ]
    exporters = topo["monitoring"]["exporters"]
    for job in dict.fromkeys(e["job"] for e in exporters):
        jobs.append(_static(job, [(e["endpoint"], {"host": e["host"]}) for e in exporters if e["job"] == job]))
    for nginx in topo["nginx"]:
        tls = bool(nginx["https_port"])
        port = nginx["https_port"] or nginx["http_port"]
        scheme = "https" if tls else "http"
        jobs.append(_probe("blackbox_https", SITE_MODULES[tls],
                           [(f"{scheme}://{nginx['address']}:{port}{site_path}", {"host": nginx["host"]})], blackbox))
        if topo["centrifugo"] and topo["realtime_backend"] in ("centrifugo", "both"):
            jobs.append(_probe("blackbox_websocket", WEBSOCKET_MODULES[tls],
                               [(f"{nginx['address']}:{port}", {"host": nginx["host"]})], blackbox))
            if nginx.get("l4_port"):
                # l4 mode: the stream listener too, where Centrifugo itself answers the TLS handshake and the upgrade.
                jobs.append(_probe("blackbox_websocket", WEBSOCKET_MODULES[True],
                                   [(f"{nginx['address']}:{nginx['l4_port']}", {"host": nginx["host"], "listener": "l4"})],
                                   blackbox))
    alive = [(f"http://{d['address']}:{d['port']}/healthz", {"host": d["host"], "server": kind})
             for kind in ("gunicorn", "daphne") for d in topo["django"][kind]]
    jobs.append(_probe("blackbox_django", ALIVE_MODULE, alive, blackbox))
    return _merge([job for job in jobs if job])


def _merge(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One scrape config per job name (the probes add one per nginx host): static_configs joined."""
    out: dict[str, dict[str, Any]] = {}
    for job in jobs:
        if job["job_name"] in out:
            out[job["job_name"]]["static_configs"] += job["static_configs"]
        else:
            out[job["job_name"]] = job
    return list(out.values())


class FilterModule:
    """The monitoring role's filters."""

    def filters(self) -> dict[str, Any]:  # noqa: D102
        return {"rtstack_scrape_configs": scrape_configs, "rtstack_blackbox_site": blackbox_site,
                "rtstack_exporter": exporter}
