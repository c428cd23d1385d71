"""The host firewall (roles/firewall, on in this scenario): each tier reaches only what it needs.

Every check opens a real TCP connection from inside one test host to another host's service port;
an allowed path connects, a refused one is dropped (times out) by the nftables input chain.
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.skipif(os.environ.get("RTSTACK_FIREWALL") != "1",
                                reason="the firewall is off for this inventory (RTSTACK_FIREWALL != 1)")


def service_port(manifest, host: str, port: str) -> int:
    """The port of service ``port`` (a port name of PATHS) on ``host``, from the manifest:
    redis, centrifugo (client port), centrifugo-internal (API/health), django (gunicorn),
    nginx-internal (the private server of Centrifugo's proxy calls)."""
    if port == "redis":
        ports = [server.port for server in manifest.redis.servers if server.host == host]
    elif port == "centrifugo":
        ports = [node.port for node in manifest.centrifugo_on(host)]
    elif port == "centrifugo-internal":
        ports = [node.internal_port for node in manifest.centrifugo_on(host)]
    elif port == "django":
        ports = [item.port for item in manifest.gunicorn_on(host)]
    elif port == "nginx-internal":
        ports = [item.internal_port for item in manifest.nginx if item.host == host]
    else:
        raise ValueError(f"unknown port name {port!r}")
    assert ports, f"the manifest lists no {port} port on {host}"
    return ports[0]


def connects(host, ip: str, port: int) -> bool:
    """Whether a TCP connection from ``host`` to ``ip:port`` succeeds within 2 seconds."""
    probe = (f"python3 -c \"import socket; socket.create_connection(('{ip}', {port}), timeout=2).close()\"")
    return host.run(probe).rc == 0


# (from tier, to tier, port name, allowed)
PATHS = [
    ("centrifugo", "redis", "redis", True),
    ("nginx", "redis", "redis", False),
    ("nginx", "centrifugo", "centrifugo", True),
    ("redis", "centrifugo", "centrifugo", False),
    ("django", "centrifugo", "centrifugo-internal", True),
    ("nginx", "centrifugo", "centrifugo-internal", False),
    ("nginx", "django", "django", True),
    # Centrifugo's proxy calls go through nginx's private server, which only Centrifugo reaches.
    ("centrifugo", "django", "django", False),
    ("centrifugo", "nginx", "nginx-internal", True),
    ("django", "nginx", "nginx-internal", False),
    # The monitoring host (beside Redis in the local inventory) probes gunicorn and daphne (blackbox).
    ("monitoring", "django", "django", True),
]


@pytest.mark.parametrize("source,target,port,allowed", PATHS,
                         ids=[f"{s}-to-{t}:{p}-{'open' if a else 'dropped'}" for s, t, p, a in PATHS])
def test_tier_paths(hosts, groups, manifest, source, target, port, allowed):
    name = groups[target][0]
    assert connects(hosts[source][0], manifest.address(name), service_port(manifest, name, port)) is allowed


def test_ruleset_is_loaded_and_drops_by_default(hosts):
    for group_hosts in hosts.values():
        for host in group_hosts:
            ruleset = host.check_output("nft list table inet rtstack")
            assert "policy drop" in ruleset
