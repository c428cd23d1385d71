"""The stack topology, computed once from the inventory (README, "Topology").

Filters (Ansible filter plugins; pure functions, unit-tested in tests/test_plugins.py):

* ``rtstack_topology(hostvars, groups)``: which host serves which tier, on which private address,
  with which instances and ports (the shape is documented on :func:`topology`). Every role, the
  preflight, the manifest (``templates/stack.json.j2``), the tests and the benchmarks read it.
* ``rtstack_topology_sha256``: a stable hash of a topology (the manifest's stamp).
* ``rtstack_centrifugo_instances``: the centrifugo role's instance list with every field filled in.
* ``rtstack_unaddressed``: the hosts whose private address is not known yet.

Whether two services of a topology would share a listener is checked by rtstack_listeners.py (the group_vars
chain ``rtstack_topology | rtstack_listeners_checked``). What the roles compute from a topology is in
rtstack_tiers.py.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

try:  # inside Ansible
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - the unit tests import Ansible too
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

#: The repository's roles: the topology's defaults are their own defaults (one source).
ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"

#: Tier name -> inventory group (fixed group names; README, "Topology").
TIER_GROUPS = {
    "redis": "redis",
    "redis_sentinel": "redis_sentinel",
    "postgresql": "postgresql",
    "centrifugo": "centrifugo",
    "django": "django",
    "nginx": "nginx",
    "monitoring": "monitoring",
}

#: The public variables the topology reads from each host (inventory, group_vars, host_vars),
#: by the role that owns them; when a host does not set one, the owner role's default applies.
WIRING = {
    "redis": ("redis_port", "redis_sentinel_port", "redis_sentinel_master_name", "redis_mode", "redis_server_flavor",
              "redis_sentinel_flavor", "redis_exporter_port", "redis_sentinel_exporter_port"),
    "postgresql": ("postgresql_port", "postgresql_app_database", "postgresql_app_user", "postgresql_app_login_users",
                   "postgresql_app_login_user", "postgresql_outbox_user", "postgresql_exporter_port"),
    "centrifugo": ("centrifugo_port", "centrifugo_internal_port", "centrifugo_state", "centrifugo_service",
                   "centrifugo_version", "centrifugo_client_auth"),
    "django": ("django_port", "django_daphne_ports", "django_metrics_port", "django_channel_layer"),
    "nginx": ("nginx_listen_port", "nginx_tls_listen_port", "nginx_tls_enabled", "nginx_internal_port",
              "nginx_exporter_port", "nginx_log_exporter_port", "nginx_centrifugo_mode", "nginx_centrifugo_l4_port",
              "nginx_centrifugo_l4_public_port"),
    "monitoring": ("monitoring_prometheus_port", "monitoring_alertmanager_port", "monitoring_blackbox_port",
                   "monitoring_node_exporter_port"),
}

#: Stack-wide choices (group_vars all) that no role owns, and their defaults (roles read them from the
#: topology, never with a default of their own).
STACK_DEFAULTS = {
    "realtime_backend": "centrifugo",
    "stack_public_origins": [],
    "stack_public_http_url": "",
    "stack_outbox": True,
    "stack_outbox_partitions": 4,
    "stack_centrifugo_transports": ["websocket", "http_stream", "sse"],
    "stack_centrifugo_uni_transports": [],
    "stack_personal_namespace": "personal",
    "monitoring_enabled": False,
    "stack_login_limit_exempt": [],
}

#: The servers the Redis tier may run (redis_server_flavor, redis_sentinel_flavor): Redis, or Valkey, its
#: Redis-compatible fork.
REDIS_FLAVORS = ("redis", "valkey")


def _networks(value: Any, name: str) -> list[str]:
    """A list of IP addresses or networks (``"10.0.0.0/8"``, ``"192.0.2.7"``), as given.

    Raises:
        TopologyError: not a list, or an item that is neither.
    """
    if not isinstance(value, (list, tuple)):
        raise TopologyError(f"{name} must be a list of addresses or networks (got {value!r})")
    for item in value:
        try:
            ipaddress.ip_network(str(item), strict=False)
        except ValueError:
            raise TopologyError(f"{name}: {item!r} is not an IP address or network (e.g. 192.0.2.7 or "
                                "10.0.0.0/8)") from None
    return [str(item) for item in value]


def redis_flavor_names(flavor: str) -> dict[str, str]:
    """What Debian's packages of one flavor name and install, for its server and its sentinel.

    Debian 13's valkey-server and valkey-sentinel mirror redis-server and redis-sentinel (the same
    hardened units, with the flavor in every name and path), so one pattern gives both.

    Args:
        flavor: ``"redis"`` or ``"valkey"`` (:data:`REDIS_FLAVORS`).

    Returns:
        ``{"flavor", "package", "service", "sentinel_package", "sentinel_service", "cli", "user",
        "conf_dir", "conf", "sentinel_conf", "data_dir", "log_dir", "log", "sentinel_log", "pidfile",
        "sentinel_pidfile"}`` (``conf``, ``log``: the server's runtime config and log file).
    """
    conf_dir, log_dir = f"/etc/{flavor}", f"/var/log/{flavor}"
    return {"flavor": flavor, "package": f"{flavor}-server", "service": f"{flavor}-server",
            "sentinel_package": f"{flavor}-sentinel", "sentinel_service": f"{flavor}-sentinel",
            "cli": f"{flavor}-cli", "user": flavor, "conf_dir": conf_dir, "conf": f"{conf_dir}/{flavor}.conf",
            "sentinel_conf": f"{conf_dir}/sentinel.conf", "data_dir": f"/var/lib/{flavor}", "log_dir": log_dir,
            "log": f"{log_dir}/{flavor}-server.log", "sentinel_log": f"{log_dir}/{flavor}-sentinel.log",
            "pidfile": f"/run/{flavor}/{flavor}-server.pid", "sentinel_pidfile": f"/run/sentinel/{flavor}-sentinel.pid"}

#: The outbox (app/chat/outbox.py): the app's table Centrifugo's PostgreSQL consumer reads (the
#: app's ``chat.models.OUTBOX_TABLE``) and the channel its NOTIFY wakes the consumers on.
OUTBOX_TABLE = "chat_outbox"
OUTBOX_NOTIFY_CHANNEL = "centrifugo_outbox"

#: Centrifugo's client WebSocket path (websocket.handler_prefix + "/websocket" in Centrifugo v6).
CENTRIFUGO_WEBSOCKET_PATH = "/connection/websocket"
#: Centrifugo v6's client transports (https://centrifugal.dev/docs/transports/overview), each served at
#: CONNECTION_PREFIX + "/" + name: bidirectional (SDK clients; http_stream and sse send their commands to
#: EMULATION_PATH) and unidirectional (any HTTP client, no SDK).
BIDIRECTIONAL_TRANSPORTS = ("websocket", "http_stream", "sse")
UNIDIRECTIONAL_TRANSPORTS = ("uni_sse", "uni_http_stream")
CONNECTION_PREFIX = "/connection"
EMULATION_PATH = "/emulation"
#: Django Channels' layers on Redis (django_channel_layer): channels_redis's RedisChannelLayer, RedisPubSubChannelLayer.
CHANNEL_LAYERS = ("redis", "redis_pubsub")
#: How nginx carries Centrifugo's WebSocket (nginx_centrifugo_mode; README of roles/nginx, "l7 or l4"): l7 proxies
#: HTTP (nginx terminates TLS on the site's port), l4 passes TCP through its stream module to Centrifugo, which
#: terminates TLS itself, on a port of its own.
CENTRIFUGO_MODES = ("l7", "l4")


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


def _transports(stack: Callable[[str], Any]) -> dict[str, Any]:
    """The ``centrifugo_transports`` entry from stack_centrifugo_transports (bidirectional, in the order
    browsers try them) and stack_centrifugo_uni_transports.

    Raises:
        TopologyError: not a list, an unknown name, or no bidirectional transport at all.
    """
    out: dict[str, Any] = {"connection_prefix": CONNECTION_PREFIX, "emulation_path": EMULATION_PATH}
    for key, variable, known, allow_empty in (
            ("bidirectional", "stack_centrifugo_transports", BIDIRECTIONAL_TRANSPORTS, False),
            ("unidirectional", "stack_centrifugo_uni_transports", UNIDIRECTIONAL_TRANSPORTS, True)):
        names = stack(variable)
        if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
            raise TopologyError(f"{variable} must be a list of transport names out of {', '.join(known)} "
                                f"(got {names!r})")
        unknown = [name for name in names if name not in known]
        if unknown or len(set(names)) != len(names) or (not names and not allow_empty):
            raise TopologyError(f"{variable} must list {'' if allow_empty else 'at least one of '}"
                                f"{', '.join(known)}, each once (got {list(names)!r})")
        out[key] = list(names)
    out["emulation"] = any(name in ("http_stream", "sse") for name in out["bidirectional"])
    return out


def _personal_namespace(name: Any) -> str:
    """stack_personal_namespace: the Centrifugo namespace of the users' personal channels
    (``<namespace>:#<user id>``). Raises TopologyError unless it is a namespace name."""
    if not isinstance(name, str) or not re.fullmatch(r"[-a-zA-Z0-9_.]{2,}", name) or name == "rooms":
        raise TopologyError(f"stack_personal_namespace must be a Centrifugo namespace name (^[-a-zA-Z0-9_.]{{2,}}$, "
                            f"not 'rooms', the rooms' namespace) (got {name!r})")
    return name


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


def _endpoint(host: str, address: str, port: int, **extra: Any) -> dict[str, Any]:
    """A TCP service of the topology: ``{host, address, port, endpoint: "address:port", ...extra}``."""
    return {"host": host, "address": address, "port": port, "endpoint": f"{address}:{port}", **extra}


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
             "centrifugo_transports": {"bidirectional": [name, ...], "unidirectional": [name, ...],
                                       "emulation": bool, "connection_prefix", "emulation_path"},
             "personal_namespace": str,                   # personal channels: <namespace>:#<user id>
             "login_limit_exempt": [address or network, ...],   # stack_login_limit_exempt
             "redis": {"servers": [{host, address, port, endpoint}], "sentinels": [{host, address, port, endpoint}],
                       "sentinel_master_name", "flavor", "sentinel_flavor",   # endpoint: "address:port";
                       "names": {"server": {...}, "sentinel": {...}}},        # flavor: redis|valkey;
                                                   # names: redis_flavor_names() of each
             "postgresql": [{host, address, port, endpoint, database, user, outbox_user}],
             "outbox": {"enabled", "table", "notify_channel", "partitions"},   # enabled: PostgreSQL,
                                                   # Centrifugo and stack_outbox
             "centrifugo": [{host, address, name, port, internal_port, unit, state, client_url, base_url, internal_url,
                             api_url, health_url, metrics_url, proxy_url}],   # every instance, absent ones too;
                             # proxy_url: where its proxies call Django (below)
             "django": {"gunicorn": [{host, address, port, url}], "daphne": [{host, address, port, url}],
                        "channel_layer": "redis" | "redis_pubsub"},   # django_channel_layer
             "nginx": [{host, address, http_port, https_port, internal_port, l4_port, proxy_url}],
             "centrifugo_mode": "l7" | "l4",                     # nginx_centrifugo_mode
             "centrifugo_public": {"mode", "websocket_port", "websocket_urls", "websocket_origins"},
             "monitoring": {"enabled", "servers": [{host, address, prometheus_port, alertmanager_port, blackbox_port,
                                                   prometheus_url, alertmanager_url}],
                            "exporters": [{job, host, address, port, endpoint, variable}]},   # monitoring_enabled
             # proxy_url: the private, load-balanced endpoint of Centrifugo's proxy calls to Django
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

    def app_login_user(host: str) -> str:
        # The role the app logs in as: postgresql_app_user itself, or the active one of the blue/green login
        # roles (postgresql_app_login_user, else the first of postgresql_app_login_users).
        login_users = list(var(host, "postgresql_app_login_users") or [])
        active = var(host, "postgresql_app_login_user") or (login_users[0] if login_users else "")
        if not login_users:
            return var(host, "postgresql_app_user")
        if len(login_users) != 2 or len(set(login_users)) != 2 or active not in login_users:
            raise TopologyError(
                f"postgresql_app_login_users must be two different role names and postgresql_app_login_user one of "
                f"them (on {host}: {login_users!r}, {active!r}): see roles/postgresql README, 'Blue/green login roles'")
        return active

    addresses = {h: _host_address(h, hv[h]) for h in names}
    backend = stack("realtime_backend")
    redis_mode = stack("redis_mode")
    flavor = stack("redis_server_flavor")
    sentinel_flavor = stack("redis_sentinel_flavor") or flavor
    for name, value in (("redis_server_flavor", flavor), ("redis_sentinel_flavor", sentinel_flavor)):
        if value not in REDIS_FLAVORS:
            raise TopologyError(f"{name} must be {' or '.join(REDIS_FLAVORS)} (got {value!r}): set it in "
                                "group_vars all (README of roles/redis, \"Redis or Valkey\").")
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
        "centrifugo_transports": _transports(stack),
        "personal_namespace": _personal_namespace(stack("stack_personal_namespace")),
        "login_limit_exempt": _networks(stack("stack_login_limit_exempt"), "stack_login_limit_exempt"),
    }

    topo["redis"] = {
        "servers": [_endpoint(h, addresses[h], _port(var(h, "redis_port"), h, "redis_port"))
                    for h in members["redis"]],
        # Sentinel mode: the sentinels run on the hosts of the redis_sentinel group, never on a Redis
        # server (a sentinel that dies with the master cannot tell the clients where the new one is).
        "sentinels": [_endpoint(h, addresses[h], _port(var(h, "redis_sentinel_port"), h, "redis_sentinel_port"))
                      for h in members["redis_sentinel"]] if redis_mode == "sentinel" else [],
        "sentinel_master_name": stack("redis_sentinel_master_name"),
        "flavor": flavor,
        "sentinel_flavor": sentinel_flavor,
        # What the servers' and the sentinels' packages name (units, files, user): the roles and tests read these.
        "names": {"server": redis_flavor_names(flavor), "sentinel": redis_flavor_names(sentinel_flavor)},
    }
    topo["postgresql"] = [_endpoint(h, addresses[h], _port(var(h, "postgresql_port"), h, "postgresql_port"),
                                    database=var(h, "postgresql_app_database"), user=var(h, "postgresql_app_user"),
                                    login_user=app_login_user(h), outbox_user=var(h, "postgresql_outbox_user"))
                          for h in members["postgresql"]]
    partitions = stack("stack_outbox_partitions")
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise TopologyError(f"stack_outbox_partitions must be an integer >= 1 (got {partitions!r})")
    topo["outbox"] = {
        "enabled": bool(members["postgresql"] and members["centrifugo"] and backend in ("centrifugo", "both")
                        and str(stack("stack_outbox")).lower() in ("true", "1", "yes")),
        "table": OUTBOX_TABLE, "notify_channel": OUTBOX_NOTIFY_CHANNEL, "partitions": partitions,
    }

    mode, public_port = _centrifugo_mode(var, members["nginx"])
    topo["centrifugo_mode"] = mode
    client_scheme, base_scheme = ("wss", "https") if mode == "l4" else ("ws", "http")
    centrifugo = []
    for h in members["centrifugo"]:
        given = _get(hv[h], "centrifugo_instances", None)
        if given is None:
            given = [{"port": var(h, "centrifugo_port"), "internal_port": var(h, "centrifugo_internal_port")}]
        for inst in centrifugo_instances(given, _get(hv[h], "centrifugo_node_name", h), var(h, "centrifugo_state"),
                                         var(h, "centrifugo_service"), host=h):
            a = addresses[h]
            internal = f"http://{a}:{inst['internal_port']}"
            centrifugo.append(dict(inst, host=h, address=a,
                                   client_url=f"{client_scheme}://{a}:{inst['port']}{CENTRIFUGO_WEBSOCKET_PATH}",
                                   base_url=f"{base_scheme}://{a}:{inst['port']}", internal_url=internal, api_url=f"{internal}/api", health_url=f"{internal}/health",
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
    layers = {str(var(h, "django_channel_layer")) for h in members["django"]} or {"redis"}
    if len(layers) > 1 or not layers <= set(CHANNEL_LAYERS):
        raise TopologyError(f"django_channel_layer must be one of {', '.join(CHANNEL_LAYERS)}, the same on every Django "
                            f"host (got {sorted(layers)}): set it in group_vars (README of roles/django)")
    topo["django"] = {"gunicorn": gunicorn, "daphne": daphne, "channel_layer": layers.pop()}

    topo["nginx"] = []
    for h in members["nginx"]:
        http_port = _port(var(h, "nginx_listen_port"), h, "nginx_listen_port")
        tls = str(var(h, "nginx_tls_enabled")).lower() in ("true", "1", "yes")
        https_port = _port(var(h, "nginx_tls_listen_port"), h, "nginx_tls_listen_port") if tls else None
        internal_port = _port(var(h, "nginx_internal_port"), h, "nginx_internal_port")
        l4 = mode == "l4"
        if l4 and not tls:
            raise TopologyError(f"{h}: nginx_centrifugo_mode l4 needs nginx_tls_enabled: Centrifugo terminates TLS "
                                "with the site's certificate (README of roles/nginx, \"l7 or l4\")")
        topo["nginx"].append({"host": h, "address": addresses[h], "http_port": http_port, "https_port": https_port,
                              "internal_port": internal_port,
                              "l4_port": _port(var(h, "nginx_centrifugo_l4_port"), h, "nginx_centrifugo_l4_port")
                              if l4 else None,
                              "proxy_url": f"http://{addresses[h]}:{internal_port}/centrifugo"})
    topo["centrifugo_public"] = _centrifugo_public(mode, public_port, origins)

    # Centrifugo's proxies call nginx's private server, which passes each call to a live Django host; with
    # several nginx hosts the n-th Centrifugo host calls nginx host n modulo their number. A stack without
    # nginx calls a Django host's gunicorn straight, spread the same way.
    bases = [n["proxy_url"] for n in topo["nginx"]] or [g["url"] + "/centrifugo" for g in gunicorn]
    cluster_hosts = list(dict.fromkeys(i["host"] for i in centrifugo))
    for inst in centrifugo:
        inst["proxy_url"] = bases[cluster_hosts.index(inst["host"]) % len(bases)] if bases else ""

    topo["monitoring"] = _monitoring(str(stack("monitoring_enabled")).lower() in ("true", "1", "yes"),
                                     var, addresses, names, members, topo)

    versions = {}
    if members["centrifugo"]:
        versions["centrifugo"] = str(var(members["centrifugo"][0], "centrifugo_version"))
    topo["versions"] = versions
    return topo


def _centrifugo_mode(var: Callable[[str, str], Any], nginx_hosts: Sequence[str]) -> tuple[str, int | None]:
    """The stack's nginx_centrifugo_mode and, in l4, the public port of the l4 listener.

    Returns:
        ``("l7", None)`` (also without nginx hosts) or ``("l4", nginx_centrifugo_l4_public_port)``.

    Raises:
        TopologyError: an unknown mode, or nginx hosts that differ in the mode or the public port (clients
            and the app's pages use one address for every nginx host).
    """
    seen = {(str(var(h, "nginx_centrifugo_mode")), str(var(h, "nginx_centrifugo_l4_public_port"))) for h in nginx_hosts}
    if not seen:
        return "l7", None
    if len(seen) > 1:
        raise TopologyError("nginx_centrifugo_mode and nginx_centrifugo_l4_public_port must be the same on every nginx "
                            f"host (got {sorted(seen)}): set them in group_vars (README of roles/nginx, \"l7 or l4\")")
    mode, public_port = seen.pop()
    if mode not in CENTRIFUGO_MODES:
        raise TopologyError(f"nginx_centrifugo_mode must be one of {', '.join(CENTRIFUGO_MODES)} (got {mode!r}): "
                            "README of roles/nginx, \"l7 or l4\"")
    if mode == "l7":
        return mode, None
    return mode, _port(public_port, nginx_hosts[0], "nginx_centrifugo_l4_public_port")


def _centrifugo_public(mode: str, public_port: int | None, origins: Sequence[str]) -> dict[str, Any]:
    """The ``centrifugo_public`` entry: where clients open Centrifugo's WebSocket.

    In l7 it is under each public origin of the site; in l4 on the same host names at the l4 listener's
    public port (cookies are not isolated by port, RFC 6265 section 8.5, so the connect proxy still sees the
    session cookie). The other transports (HTTP-streaming, SSE, emulation, unidirectional) stay on the site's
    origin in both modes: a client behind a proxy that blocks WebSockets often blocks other ports too.

    Returns:
        ``{"mode", "websocket_port": public port or None (l7), "websocket_urls": [url per public origin],
        "websocket_origins": [https and wss origin of each l4 url; empty in l7]}``.
    """
    urls, extra = [], []
    for origin in origins:
        scheme, sep, rest = origin.rstrip("/").partition("://")
        if not sep:
            continue
        ws = "wss" if scheme == "https" else "ws"
        if mode == "l4":
            hostname = rest.rsplit(":", 1)[0] if not rest.endswith("]") else rest
            rest = f"{hostname}:{public_port}"
            extra += [f"https://{rest}", f"wss://{rest}"]
        urls.append(f"{ws}://{rest}{CENTRIFUGO_WEBSOCKET_PATH}")
    return {"mode": mode, "websocket_port": public_port, "websocket_urls": urls,
            "websocket_origins": list(dict.fromkeys(extra))}


#: Each exporter's scrape job (README of roles/monitoring, "Scrape jobs"): job -> (tier whose hosts run it,
#: the variable of its port). Node exporter runs on every host of the stack.
EXPORTERS = {
    "node": ("*", "monitoring_node_exporter_port"),
    "redis": ("redis", "redis_exporter_port"),
    "redis_sentinel": ("redis_sentinel", "redis_sentinel_exporter_port"),
    "postgresql": ("postgresql", "postgresql_exporter_port"),
    "nginx": ("nginx", "nginx_exporter_port"),
    "nginx_log": ("nginx", "nginx_log_exporter_port"),
    "django": ("django", "django_metrics_port"),
}


def _monitoring(enabled: bool, var: Callable[[str, str], Any], addresses: Mapping[str, str], names: Sequence[str],
                members: Mapping[str, Sequence[str]], topo: Mapping[str, Any]) -> dict[str, Any]:
    """The ``monitoring`` entry: the Prometheus hosts and every exporter's listener (``monitoring_enabled``).

    Returns:
        ``{"enabled": bool, "servers": [{host, address, prometheus_port, alertmanager_port, blackbox_port,
        prometheus_url, alertmanager_url}], "exporters": [{job, host, address, port, endpoint, variable}]}``;
        both lists empty when monitoring is off. The sentinel exporters are listed in redis_mode sentinel only.

    Raises:
        TopologyError: monitoring is on and the ``monitoring`` group has no host, or a port is not a TCP port.
    """
    if not enabled:
        return {"enabled": False, "servers": [], "exporters": []}
    if not members["monitoring"]:
        raise TopologyError("monitoring_enabled is true but the inventory's monitoring group has no host: add the host "
                            "that runs Prometheus and Alertmanager to the group monitoring, or set monitoring_enabled: "
                            "false (README of roles/monitoring).")
    servers = []
    for h in members["monitoring"]:
        ports = {key: _port(var(h, f"monitoring_{key}"), h, f"monitoring_{key}")
                 for key in ("prometheus_port", "alertmanager_port", "blackbox_port")}
        servers.append(dict(ports, host=h, address=addresses[h],
                            prometheus_url=f"http://{addresses[h]}:{ports['prometheus_port']}",
                            alertmanager_url=f"http://{addresses[h]}:{ports['alertmanager_port']}"))
    sentinel_hosts = {s["host"] for s in topo["redis"]["sentinels"]}
    exporters = []
    for job, (tier, variable) in EXPORTERS.items():
        hosts = names if tier == "*" else members[tier]
        for h in hosts:
            if job == "redis_sentinel" and h not in sentinel_hosts:
                continue
            exporters.append(_endpoint(h, addresses[h], _port(var(h, variable), h, variable), job=job, variable=variable))
    return {"enabled": True, "servers": servers, "exporters": exporters}


def topology_sha256(topo: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the topology as canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(topo, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


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


class FilterModule:
    """The stack topology's filters."""

    def filters(self) -> dict[str, Any]:  # noqa: D102
        return {
            "rtstack_topology": topology,
            "rtstack_topology_sha256": topology_sha256,
            "rtstack_centrifugo_instances": centrifugo_instances,
            "rtstack_unaddressed": unaddressed,
        }
