"""The host firewall (roles/firewall, on in this scenario): each tier reaches only what it needs.

Every check opens a real TCP connection from inside one test host to another host's service port;
an allowed path connects, a refused one is dropped (times out) by the nftables input chain.
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.skipif(os.environ.get("RTSTACK_FIREWALL") != "1",
                                reason="the firewall is off for this inventory (RTSTACK_FIREWALL != 1)")

PORTS = {"redis": 6379, "centrifugo": 8000, "centrifugo-internal": 9000, "django": 8001}


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
    ("centrifugo", "django", "django", True),
    ("redis", "django", "django", False),
]


@pytest.mark.parametrize("source,target,port,allowed", PATHS,
                         ids=[f"{s}-to-{t}:{p}-{'open' if a else 'dropped'}" for s, t, p, a in PATHS])
def test_tier_paths(hosts, groups, address, source, target, port, allowed):
    ip = address[groups[target][0]]
    assert connects(hosts[source][0], ip, PORTS[port]) is allowed


def test_ruleset_is_loaded_and_drops_by_default(hosts):
    for group_hosts in hosts.values():
        for host in group_hosts:
            ruleset = host.check_output("nft list table inet rtstack")
            assert "policy drop" in ruleset
