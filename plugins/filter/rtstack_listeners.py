"""Listeners of the stack topology: every address and port a service of the stack listens on, and the
check that no two services share one (README, "Topology").

Filters (Ansible filter plugins; pure functions, unit-tested in tests/test_plugins.py):

* ``rtstack_listeners(topology)``: every listener, as ``[address, port, host, variable]``.
* ``rtstack_listeners_checked(topology)``: the topology itself once no two services share a listener
  (playbooks/group_vars/all/topology.yml chains it after ``rtstack_topology``, so every run checks it).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

try:  # inside Ansible
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - the unit tests import Ansible too
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]


class ListenerClash(AnsibleFilterError):
    """Two services of the topology would listen on the same address and port (the message names both,
    their hosts and the variables that set the ports)."""


def listeners(topo: Mapping[str, Any]) -> list[tuple[str, int, str, str]]:
    """Every (address, port) a service of the topology listens on.

    Args:
        topo: the stack topology (``rtstack_topology``).

    Returns:
        ``(address, port, host, what)`` tuples, ``what`` naming the variable that sets the port (for the Centrifugo
        instances, the field of ``centrifugo_instances`` and the unit), in the topology's order.
    """
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
        out.append((s["address"], s["internal_port"], s["host"], "nginx_internal_port"))
        if s.get("l4_port"):
            out.append((s["address"], s["l4_port"], s["host"], "nginx_centrifugo_l4_port"))
    for s in topo["monitoring"]["servers"]:
        out.append((s["address"], s["prometheus_port"], s["host"], "monitoring_prometheus_port"))
        out.append((s["address"], s["alertmanager_port"], s["host"], "monitoring_alertmanager_port"))
    for e in topo["monitoring"]["exporters"]:
        out.append((e["address"], e["port"], e["host"], e["variable"]))
    return out


def checked(topo: Mapping[str, Any]) -> Mapping[str, Any]:
    """``topo`` unchanged, once no two of its services would listen on the same address and port.

    Args:
        topo: the stack topology (``rtstack_topology``).

    Raises:
        ListenerClash: naming the address, both services (by the variable that sets each port) and their hosts.
    """
    seen: dict[tuple[str, int], tuple[str, str]] = {}
    for address, port, host, what in listeners(topo):
        key = (address, port)
        if key in seen:
            other_host, other = seen[key]
            raise ListenerClash(
                f"Two services would listen on {address}:{port}: {other} of {other_host} and {what} of {host}. "
                f"Change one of them (or give the hosts their own rtstack_private_address).")
        seen[key] = (host, what)
    return topo


class FilterModule:
    """The topology's listener filters."""

    def filters(self) -> dict[str, Any]:  # noqa: D102
        return {
            "rtstack_listeners": lambda topo: [list(item) for item in listeners(topo)],
            "rtstack_listeners_checked": checked,
        }
