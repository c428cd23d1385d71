"""The stack topology, computed once from the inventory, and the other computed data of the roles.

Filters (Ansible filter plugins; pure functions, unit-tested in tests/test_plugins.py):

* ``rtstack_topology(hostvars, groups)``: which host serves which tier, on which private address,
  with which instances and ports (the shape is documented on :func:`topology`). Every role, the
  preflight, the manifest (``templates/stack.json.j2``), the tests and the benchmarks read it.
* ``rtstack_topology_sha256``: a stable hash of a topology (the manifest's stamp).
* ``rtstack_centrifugo_instances``: the centrifugo role's instance list with every field filled in.
* ``rtstack_redis_current_master``: the Redis master the sentinels agree on (majority vote).
* ``rtstack_firewall_rules``: the input rules of one host's firewall, from the topology.
* ``rtstack_unaddressed``: the hosts whose private address is not known yet.
* ``rtstack_warn_unreachable``: warn about the hosts a delegated ping could not reach.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

try:  # inside Ansible
    from ansible.errors import AnsibleFilterError
    from ansible.utils.display import Display
except ImportError:  # pragma: no cover - the unit tests import Ansible too
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]
    Display = None  # type: ignore[assignment]

#: The repository's roles: the topology's defaults are their own defaults (one source).
ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"

#: Tier name -> inventory group, unless the inventory's ``rtstack_tier_groups`` says otherwise.
TIER_GROUPS = {
    "redis": "redis",
    "postgresql": "postgresql",
    "centrifugo": "centrifugo",
    "django": "django",
    "nginx": "nginx",
}

#: The public variables the topology reads from each host (inventory, group_vars, host_vars),
#: by the role that owns them; when a host does not set one, the owner role's default applies.
WIRING = {
    "redis": ("redis_port", "redis_sentinel_port", "redis_sentinel_master_name", "redis_mode"),
    "postgresql": ("postgresql_port",),
    "centrifugo": ("centrifugo_port", "centrifugo_internal_port", "centrifugo_state", "centrifugo_service",
                   "centrifugo_version"),
    "django": ("django_port", "django_daphne_ports"),
    "nginx": ("nginx_listen_port", "nginx_tls_listen_port", "nginx_tls_enabled"),
}

#: Stack-wide choices (group_vars all) and their defaults.
STACK_DEFAULTS = {
    "realtime_backend": "centrifugo",
    "centrifugo_client_auth": "proxy",
    "stack_public_origins": [],
    "stack_public_http_url": "",
}

#: Centrifugo's client WebSocket path (websocket.handler_prefix + "/websocket" in Centrifugo v6).
CENTRIFUGO_WEBSOCKET_PATH = "/connection/websocket"


class TopologyError(AnsibleFilterError):
    """The inventory does not describe a stack that can be wired (the message names the host,
    the variable and the fix)."""


@lru_cache(maxsize=None)
def role_defaults() -> dict[str, Any]:
    """The owner roles' literal defaults of the wiring variables (``WIRING``), read from
    ``roles/<role>/defaults/main.yml``.

    Raises:
        TopologyError: a role's defaults file lacks a wiring variable, or gives it as a template.
    """
    out: dict[str, Any] = {}
    for role, names in WIRING.items():
        with (ROLES_DIR / role / "defaults" / "main.yml").open(encoding="utf-8") as handle:
            defaults = yaml.safe_load(handle) or {}
        for name in names:
            if name not in defaults or "{{" in json.dumps(defaults[name]):
                raise TopologyError(f"roles/{role}/defaults/main.yml must give {name} a literal default")
            out[name] = defaults[name]
    return out


def _port(value: Any, host: str, variable: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if not 0 < port < 65536:
        raise TopologyError(f"{host}: {variable} must be a TCP port between 1 and 65535 (got {value!r})")
    return port


def _host_address(host: str, hv: Mapping[str, Any]) -> str:
    """A host's private address: ``rtstack_private_address``, else the address of its default
    IPv4 route from facts (gathered in this run or kept in the fact cache)."""
    address = hv.get("rtstack_private_address") if "rtstack_private_address" in hv else None
    if not address:
        facts = hv.get("ansible_facts") if "ansible_facts" in hv else None
        address = ((facts or {}).get("default_ipv4") or {}).get("address")
    if not address:
        raise TopologyError(
            f"{host}: no private address. Set rtstack_private_address for {host} in the inventory (host_vars), "
            "or gather its facts once (a full playbooks/site.yml run fills the fact cache); "
            "see README, \"Topology\".")
    try:
        ipaddress.ip_address(str(address))
    except ValueError as exc:
        raise TopologyError(f"{host}: rtstack_private_address must be an IP address (got {address!r})") from exc
    return str(address)


def centrifugo_instances(instances: Sequence[Mapping[str, Any]], node_name: str, state: str = "present",
                         service: str = "centrifugo", host: str = "") -> list[dict[str, Any]]:
    """The centrifugo role's ``centrifugo_instances`` with every field filled in.

    Args:
        instances: items ``{port, internal_port[, name][, state]}`` (ports as int or str).
        node_name: the host's ``centrifugo_node_name``; an instance's name defaults to it when the host
            runs one instance, else to ``"<node_name>-<port>"``.
        state: the host's ``centrifugo_state``; ``absent`` makes every instance absent.
        service: the template unit's name; each instance runs as ``<service>@<port>.service``.
        host: the inventory host, for error messages.

    Returns:
        ``[{port, internal_port, name, state, unit}]`` in the given order, ports as int.

    Raises:
        TopologyError: an item lacks a port, a port is not a TCP port, a port repeats on the host,
            or a state is not present/absent.
    """
    where = f"{host}: " if host else ""
    if not instances:
        raise TopologyError(f"{where}centrifugo_instances must list at least one instance {{port, internal_port}}")
    out = []
    for item in instances:
        if not isinstance(item, Mapping) or "port" not in item or "internal_port" not in item:
            raise TopologyError(f"{where}each item of centrifugo_instances needs port and internal_port (got {item!r})")
        item_state = "absent" if state == "absent" else item.get("state", "present")
        if item_state not in ("present", "absent"):
            raise TopologyError(f"{where}centrifugo_instances state must be present or absent (got {item_state!r})")
        port = _port(item["port"], host, "centrifugo_instances port")
        out.append({
            "port": port,
            "internal_port": _port(item["internal_port"], host, "centrifugo_instances internal_port"),
            "name": item.get("name") or (node_name if len(instances) == 1 else f"{node_name}-{port}"),
            "state": item_state,
            "unit": f"{service}@{port}.service",
        })
    ports = [p for i in out for p in (i["port"], i["internal_port"])]
    repeated = sorted(p for p, n in Counter(ports).items() if n > 1)
    if repeated:
        raise TopologyError(f"{where}centrifugo_instances uses port(s) {repeated} twice: give each instance its own "
                            "port and internal_port, e.g. [{port: 8000, internal_port: 9000}, "
                            "{port: 8010, internal_port: 9010}]")
    return out


def _get(hv: Mapping[str, Any], name: str, default: Any) -> Any:
    return hv[name] if name in hv else default


def topology(hostvars: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Compute the stack topology from the inventory.

    Args:
        hostvars: Ansible's ``hostvars`` (host -> its variables; only the wiring variables, the
            private address and facts' ``default_ipv4`` are read).
        groups: Ansible's ``groups`` (group -> host names).

    Returns:
        A dict, every address a private IP and every port an int::

            {"tier_groups": {tier: group},
             "realtime_backend", "centrifugo_client_auth", "redis_mode", "public_origins", "site_url",
             "site_http_url",
             "hosts": {host: {"address", "groups": [tier, ...]}},
             "redis": {"servers": [{host, address, port}], "sentinels": [{host, address, port}],
                       "sentinel_master_name"},
             "postgresql": [{host, address, port}],
             "centrifugo": [{host, address, name, port, internal_port, unit, state, client_url, internal_url,
                             api_url, health_url, metrics_url}],   # every instance, absent ones too
             "django": {"gunicorn": [{host, address, port, url}], "daphne": [{host, address, port, url}]},
             "nginx": [{host, address, http_port, https_port}],
             "versions": {"centrifugo"}}

    Raises:
        TopologyError: a host has no private address, a port is not a TCP port, or two services
            would listen on one address and port (the message names the hosts and variables).
    """
    defaults = role_defaults()
    tier_groups = dict(TIER_GROUPS)
    members = {tier: list(groups.get(group, [])) for tier, group in tier_groups.items()}
    names = sorted({h for hosts in members.values() for h in hosts})
    hv = {h: hostvars[h] for h in names}
    stack_host = hostvars[names[0]] if names else {}

    def stack(name: str) -> Any:
        return _get(stack_host, name, STACK_DEFAULTS.get(name, defaults.get(name)))

    def var(host: str, name: str) -> Any:
        return _get(hv[host], name, defaults[name])

    addresses = {h: _host_address(h, hv[h]) for h in names}
    backend = stack("realtime_backend")
    redis_mode = stack("redis_mode")
    origins = list(stack("stack_public_origins") or [])
    topo: dict[str, Any] = {
        "tier_groups": tier_groups,
        "realtime_backend": backend,
        "centrifugo_client_auth": stack("centrifugo_client_auth"),
        "redis_mode": redis_mode,
        "public_origins": origins,
        "site_url": origins[0] if origins else "",
        "site_http_url": stack("stack_public_http_url") or "",
        "hosts": {h: {"address": addresses[h], "groups": [t for t in tier_groups if h in members[t]]} for h in names},
    }

    topo["redis"] = {
        "servers": [{"host": h, "address": addresses[h], "port": _port(var(h, "redis_port"), h, "redis_port")}
                    for h in members["redis"]],
        "sentinels": [{"host": h, "address": addresses[h],
                       "port": _port(var(h, "redis_sentinel_port"), h, "redis_sentinel_port")}
                      for h in members["redis"]] if redis_mode == "sentinel" else [],
        "sentinel_master_name": stack("redis_sentinel_master_name"),
    }
    topo["postgresql"] = [{"host": h, "address": addresses[h],
                           "port": _port(var(h, "postgresql_port"), h, "postgresql_port")}
                          for h in members["postgresql"]]

    centrifugo = []
    for h in members["centrifugo"]:
        given = _get(hv[h], "centrifugo_instances", None)
        if given is None:
            given = [{"port": var(h, "centrifugo_port"), "internal_port": var(h, "centrifugo_internal_port")}]
        for inst in centrifugo_instances(given, _get(hv[h], "centrifugo_node_name", h), var(h, "centrifugo_state"),
                                         var(h, "centrifugo_service"), host=h):
            a = addresses[h]
            internal = f"http://{a}:{inst['internal_port']}"
            centrifugo.append(dict(inst, host=h, address=a, client_url=f"ws://{a}:{inst['port']}{CENTRIFUGO_WEBSOCKET_PATH}",
                                   internal_url=internal, api_url=f"{internal}/api", health_url=f"{internal}/health",
                                   metrics_url=f"{internal}/metrics"))
    topo["centrifugo"] = centrifugo

    channels = backend in ("channels", "both")
    gunicorn, daphne = [], []
    for h in members["django"]:
        port = _port(var(h, "django_port"), h, "django_port")
        gunicorn.append({"host": h, "address": addresses[h], "port": port, "url": f"http://{addresses[h]}:{port}"})
        if channels:
            ports = var(h, "django_daphne_ports")
            if isinstance(ports, (str, int)) or not ports:
                raise TopologyError(f"{h}: django_daphne_ports must be a non-empty list of TCP ports (got {ports!r})")
            for p in ports:
                p = _port(p, h, "django_daphne_ports")
                daphne.append({"host": h, "address": addresses[h], "port": p, "url": f"ws://{addresses[h]}:{p}"})
    topo["django"] = {"gunicorn": gunicorn, "daphne": daphne}

    topo["nginx"] = []
    for h in members["nginx"]:
        http_port = _port(var(h, "nginx_listen_port"), h, "nginx_listen_port")
        tls = str(var(h, "nginx_tls_enabled")).lower() in ("true", "1", "yes")
        https_port = _port(var(h, "nginx_tls_listen_port"), h, "nginx_tls_listen_port") if tls else None
        topo["nginx"].append({"host": h, "address": addresses[h], "http_port": http_port, "https_port": https_port})

    versions = {}
    if members["centrifugo"]:
        versions["centrifugo"] = str(var(members["centrifugo"][0], "centrifugo_version"))
    topo["versions"] = versions
    _check_listeners(topo)
    return topo


def listeners(topo: Mapping[str, Any]) -> list[tuple[str, int, str, str]]:
    """Every (address, port) a service of the topology listens on, as ``(address, port, host, what)``
    with ``what`` naming the variable that sets the port."""
    out = []
    for s in topo["redis"]["servers"]:
        out.append((s["address"], s["port"], s["host"], "redis_port"))
    for s in topo["redis"]["sentinels"]:
        out.append((s["address"], s["port"], s["host"], "redis_sentinel_port"))
    for s in topo["postgresql"]:
        out.append((s["address"], s["port"], s["host"], "postgresql_port"))
    for i in topo["centrifugo"]:
        if i["state"] == "present":
            out.append((i["address"], i["port"], i["host"], f"centrifugo_instances port ({i['unit']})"))
            out.append((i["address"], i["internal_port"], i["host"], f"centrifugo_instances internal_port ({i['unit']})"))
    for s in topo["django"]["gunicorn"]:
        out.append((s["address"], s["port"], s["host"], "django_port"))
    for s in topo["django"]["daphne"]:
        out.append((s["address"], s["port"], s["host"], "django_daphne_ports"))
    for s in topo["nginx"]:
        out.append((s["address"], s["http_port"], s["host"], "nginx_listen_port"))
        if s["https_port"]:
            out.append((s["address"], s["https_port"], s["host"], "nginx_tls_listen_port"))
    return out


def _check_listeners(topo: Mapping[str, Any]) -> None:
    seen: dict[tuple[str, int], tuple[str, str]] = {}
    for address, port, host, what in listeners(topo):
        key = (address, port)
        if key in seen:
            other_host, other = seen[key]
            raise TopologyError(
                f"Two services would listen on {address}:{port}: {other} of {other_host} and {what} of {host}. "
                f"Change one of them (or give the hosts their own rtstack_private_address).")
        seen[key] = (host, what)


def topology_sha256(topo: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the topology as canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(topo, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def redis_answers(hostvars: Mapping[str, Mapping[str, Any]], hosts: Sequence[str],
                  topo: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What each Redis host of the play answered, in the shape :func:`redis_current_master` takes:
    its address (from the topology) and the stdout lines of its registered ``_redis_sentinel_query``
    and ``_redis_role_query`` (empty when missing)."""
    out = []
    for host in hosts:
        hv = hostvars[host]
        out.append({
            "address": topo["hosts"][host]["address"],
            "sentinel": list(((hv["_redis_sentinel_query"] if "_redis_sentinel_query" in hv else {}) or {})
                             .get("stdout_lines") or []),
            "role": list(((hv["_redis_role_query"] if "_redis_role_query" in hv else {}) or {}).get("stdout_lines") or []),
        })
    return out


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
    for n in topo["nginx"]:
        if n["host"] == host:
            allow("nginx: the public site", [n["http_port"]] + ([n["https_port"]] if n["https_port"] else []), None)
    mine = [i for i in topo["centrifugo"] if i["host"] == host and i["state"] == "present"]
    allow("Centrifugo: clients through nginx", [i["port"] for i in mine], addresses("nginx"))
    allow("Centrifugo: the HTTP API from Django", [i["internal_port"] for i in mine], addresses("django"))
    allow("gunicorn: pages through nginx, proxy calls from Centrifugo",
          [g["port"] for g in topo["django"]["gunicorn"] if g["host"] == host], addresses("nginx", "centrifugo"))
    allow("daphne (Django Channels): WebSockets through nginx",
          [d["port"] for d in topo["django"]["daphne"] if d["host"] == host], addresses("nginx"))
    redis_sources = ("centrifugo", "django", "redis") if sentinel else ("centrifugo", "django")
    allow("Redis: the app tiers" + (" and the other Redis hosts (replication, sentinels)" if sentinel else ""),
          [r["port"] for r in topo["redis"]["servers"] if r["host"] == host], addresses(*redis_sources))
    allow("Redis Sentinel: the app tiers and the other sentinels",
          [r["port"] for r in topo["redis"]["sentinels"] if r["host"] == host], addresses("centrifugo", "django", "redis"))
    allow("PostgreSQL: Django only", [p["port"] for p in topo["postgresql"] if p["host"] == host], addresses("django"))
    return rules


def unaddressed(hostvars: Mapping[str, Mapping[str, Any]], hosts: Sequence[str]) -> list[str]:
    """The hosts among ``hosts`` whose private address is not known yet: neither
    ``rtstack_private_address`` nor cached or gathered facts (``default_ipv4``) give it."""
    out = []
    for host in hosts:
        try:
            _host_address(host, hostvars[host])
        except TopologyError:
            out.append(host)
    return out


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


class FilterModule:
    """rtstack's filters."""

    def filters(self) -> dict[str, Any]:  # noqa: D102
        return {
            "rtstack_topology": topology,
            "rtstack_topology_sha256": topology_sha256,
            "rtstack_centrifugo_instances": centrifugo_instances,
            "rtstack_redis_answers": redis_answers,
            "rtstack_redis_current_master": redis_current_master,
            "rtstack_unaddressed": unaddressed,
            "rtstack_firewall_rules": firewall_rules,
            "rtstack_warn_unreachable": warn_unreachable,
        }
