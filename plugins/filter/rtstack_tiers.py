"""What the roles and playbooks compute from the stack topology (rtstack_topology.py) and from
their hosts' answers (Ansible filter plugins; pure functions, unit-tested in tests/test_plugins.py):

* ``rtstack_firewall_rules(topology, host)``: the input rules of one host's firewall.
* ``rtstack_redis_answers`` / ``rtstack_redis_current_master``: the Redis master the sentinels agree
  on (majority vote), for a converge that never undoes a failover.
* ``rtstack_warn_unreachable``: warn about the hosts outside a run that a delegated ping could not reach.
* ``rtstack_realtime_origins(topology)``: the origins browsers reach the realtime endpoints on (the
  Content-Security-Policy's connect-src).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

try:  # inside Ansible
    from ansible.utils.display import Display
except ImportError:  # pragma: no cover - the unit tests import Ansible too
    Display = None  # type: ignore[assignment]


def firewall_rules(topo: Mapping[str, Any], host: str) -> list[dict[str, Any]]:
    """The input rules of ``host``'s firewall: which of its ports each tier may reach.

    Args:
        topo: a topology (:func:`topology`).
        host: an inventory host of it.

    Returns:
        ``[{"comment": str, "ports": [int, ...], "sources": [address, ...] or None}]``, in tier order;
        ``sources`` None means from anywhere (nginx's public ports). A rule whose source tiers have
        no host is left out (nothing may reach that port).
    """
    def addresses(*tiers: str) -> list[str]:
        out: list[str] = []
        for h, entry in topo["hosts"].items():
            if any(t in entry["groups"] for t in tiers) and entry["address"] not in out:
                out.append(entry["address"])
        return out

    rules: list[dict[str, Any]] = []

    def allow(comment: str, ports: list[int], sources: list[str] | None) -> None:
        if ports and (sources is None or sources):
            rules.append({"comment": comment, "ports": sorted(set(ports)), "sources": sources})

    sentinel = topo["redis_mode"] == "sentinel"
    # Prometheus's hosts scrape the exporters and /metrics, and probe gunicorn and daphne (blackbox).
    monitoring = ("monitoring",) if topo["monitoring"]["enabled"] else ()
    for n in topo["nginx"]:
        if n["host"] == host:
            allow("nginx: the public site" + (" and Centrifugo's l4 listener" if n.get("l4_port") else ""),
                  [n["http_port"]] + ([n["https_port"]] if n["https_port"] else [])
                  + ([n["l4_port"]] if n.get("l4_port") else []), None)
            allow("nginx: Centrifugo's proxy calls to Django (the private server)", [n["internal_port"]],
                  addresses("centrifugo"))
    mine = [i for i in topo["centrifugo"] if i["host"] == host and i["state"] == "present"]
    allow("Centrifugo: clients through nginx", [i["port"] for i in mine], addresses("nginx"))
    # The other Centrifugo hosts too: a node's watchdog asks the others' API whether the broker works.
    allow("Centrifugo: the HTTP API from Django and the other nodes' watchdogs, /metrics from Prometheus",
          [i["internal_port"] for i in mine], addresses("django", "centrifugo", *monitoring))
    # Centrifugo's proxy calls come through nginx's private server; straight only in a stack without nginx.
    allow("gunicorn: pages and Centrifugo's proxy calls through nginx",
          [g["port"] for g in topo["django"]["gunicorn"] if g["host"] == host],
          addresses("nginx") if topo["nginx"] else addresses("centrifugo"))
    allow("daphne (Django Channels): WebSockets through nginx",
          [d["port"] for d in topo["django"]["daphne"] if d["host"] == host], addresses("nginx"))
    allow("gunicorn and daphne: Prometheus's liveness probes (blackbox)",
          [d["port"] for kind in ("gunicorn", "daphne") for d in topo["django"][kind] if d["host"] == host],
          addresses(*monitoring) if monitoring else [])
    redis_sources = ("centrifugo", "django", "redis", "redis_sentinel") if sentinel else ("centrifugo", "django")
    allow("Redis: the app tiers" + (", the other Redis hosts (replication) and the sentinels" if sentinel else ""),
          [r["port"] for r in topo["redis"]["servers"] if r["host"] == host], addresses(*redis_sources))
    allow("Redis Sentinel: the app tiers, the Redis hosts and the other sentinels",
          [r["port"] for r in topo["redis"]["sentinels"] if r["host"] == host],
          addresses("centrifugo", "django", "redis", "redis_sentinel"))
    outbox = topo["outbox"]["enabled"]
    allow("PostgreSQL: Django" + (", and Centrifugo's outbox consumer" if outbox else " only"),
          [p["port"] for p in topo["postgresql"] if p["host"] == host],
          addresses("django", "centrifugo") if outbox else addresses("django"))
    allow("exporters: scraped by Prometheus",
          [e["port"] for e in topo["monitoring"]["exporters"] if e["host"] == host], addresses("monitoring"))
    allow("Prometheus and Alertmanager: the monitoring hosts",
          [p for s in topo["monitoring"]["servers"] if s["host"] == host
           for p in (s["prometheus_port"], s["alertmanager_port"])], addresses("monitoring"))
    return rules


def redis_answers(hostvars: Mapping[str, Mapping[str, Any]], hosts: Sequence[str],
                  topo: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What each Redis host of the play answered, in the shape :func:`redis_current_master` takes:
    its address (from the topology) and the stdout lines of its registered ``_redis_sentinel_query``
    and ``_redis_role_query`` (empty when missing)."""
    def lines(hv: Mapping[str, Any], registered: str) -> list[str]:
        result = hv[registered] if registered in hv else None
        return list((result or {}).get("stdout_lines") or [])

    return [{"address": topo["hosts"][host]["address"],
             "sentinel": lines(hostvars[host], "_redis_sentinel_query"),
             "role": lines(hostvars[host], "_redis_role_query")} for host in hosts]


def redis_current_master(answers: Sequence[Mapping[str, Any]], initial_master: str) -> str:
    """The Redis master a converge must name, from what each Redis host answered.

    Args:
        answers: one item per Redis host in the play: ``{"address": its private address,
            "sentinel": stdout lines of AUTH + SENTINEL get-master-addr-by-name (["OK", address, port]),
            "role": stdout lines of AUTH + ROLE (["OK", "master", offset, ...] for a master)}``;
            a missing or failed answer is an empty list.
        initial_master: the address of ``redis_sentinel_initial_master``, for the first deployment.

    Returns:
        The address most sentinels name (ties: the first named); else, when the sentinels do not
        answer, the one server whose ROLE says master; else ``initial_master``.
        Source: https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/ (the
        sentinels' view is authoritative after a failover).
    """
    said = []
    for answer in answers:
        lines = list(answer.get("sentinel") or [])
        if len(lines) == 3 and lines[0] == "OK":
            try:
                ipaddress.ip_address(lines[1])
            except ValueError:
                continue
            said.append(lines[1])
    if said:
        counts = Counter(said)
        best = max(counts.values())
        return next(a for a in said if counts[a] == best)
    masters = [a["address"] for a in answers
               if len(a.get("role") or []) > 3 and a["role"][0] == "OK" and a["role"][1] == "master"]
    return masters[0] if len(masters) == 1 else initial_master


def warn_unreachable(results: Any) -> list[str]:
    """Warn (an Ansible ``[WARNING]``) about the hosts a looped, delegated ``ping`` (with
    ``ignore_unreachable`` and ``failed_when: false``) did not get a ``pong`` from, and return their
    names. A host that is down may show as unreachable (SSH) or as a failed module (a stopped
    container: the Docker connection's exec is refused).

    Args:
        results: the registered loop's ``results`` (items ``{"item": host, "ping": "pong", ...}``);
            anything else (e.g. an unrendered template seen by a linter) is ignored.
    """
    if not isinstance(results, list):
        return []
    down = [str(r.get("item")) for r in results if isinstance(r, Mapping) and r.get("ping") != "pong"]
    if down and Display is not None:
        Display().warning(
            f"Hosts of the stack outside this run do not answer: {', '.join(down)}. The play goes on with their "
            "addresses from the inventory (rtstack_private_address) or the fact cache; converge them when they are back.")
    return down


def realtime_origins(topo: Mapping[str, Any]) -> list[str]:
    """The origins browsers open the realtime endpoints on, for the app's Content-Security-Policy
    ``connect-src``: each public origin of the site (``topology.public_origins``, through nginx: Centrifugo's
    WebSocket, HTTP-streaming, SSE and emulation endpoints and Channels' WebSocket all share it) as
    ``https://`` (or ``http://``) and as its WebSocket form ``wss://`` (``ws://``). CSP3's ``'self'`` covers
    those already (https://www.w3.org/TR/CSP3/#match-url-to-source-expression); listing them keeps older
    browsers working. In l4 mode (``topology.centrifugo_public``) Centrifugo's WebSocket is on another port of
    the same host names, another origin that ``'self'`` does not cover: its ``https://`` and ``wss://`` forms follow.

    Args:
        topo: the stack topology (``rtstack_topology``).

    Returns:
        Origins without a path, e.g. ``["https://chat.example.org", "wss://chat.example.org"]``; empty when
        the topology names no public origin. No duplicates, in order.
    """
    out: list[str] = []
    for origin in topo.get("public_origins") or []:
        base = origin.rstrip("/")
        scheme, sep, rest = base.partition("://")
        if not sep or scheme not in ("https", "http"):
            continue
        for item in (base, f"{'wss' if scheme == 'https' else 'ws'}://{rest}"):
            if item not in out:
                out.append(item)
    for item in (topo.get("centrifugo_public") or {}).get("websocket_origins") or []:
        if item not in out:
            out.append(item)
    return out


class FilterModule:
    """The filters of what the roles compute from the topology."""

    def filters(self) -> dict[str, Any]:  # noqa: D102
        return {
            "rtstack_firewall_rules": firewall_rules,
            "rtstack_redis_answers": redis_answers,
            "rtstack_redis_current_master": redis_current_master,
            "rtstack_warn_unreachable": warn_unreachable,
            "rtstack_realtime_origins": realtime_origins,
        }
