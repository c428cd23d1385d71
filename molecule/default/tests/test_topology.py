"""The ports this scenario moves off their defaults (molecule/default/host_vars: django_port 8005,
daphne 8111/8112, one Centrifugo instance on 8020/9020) are followed by every consumer: the manifest,
nginx's upstreams, Centrifugo's proxy endpoints, Django's settings and the firewall rules agree, and
a real request goes through each path from the host that uses it (through the firewall)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

HOST_VARS = Path(__file__).resolve().parents[1] / "host_vars"


def inventory_ports() -> dict[str, dict]:
    """host -> the port variables the scenario's host_vars set."""
    return {path.stem: yaml.safe_load(path.read_text()) for path in sorted(HOST_VARS.glob("*.yml"))}


def get(host, url: str) -> int:
    """HTTP status of a GET of ``url`` made from inside test host ``host``. Any status is an answer
    (the path is open); a refused or dropped connection fails the check."""
    probe = host.run(
        "python3 -c \"import urllib.request as u, urllib.error as e\n"
        f"try: print(u.urlopen('{url}', timeout=5).status)\n"
        "except e.HTTPError as err: print(err.code)\"")
    assert probe.rc == 0, f"{url} from {host.backend.hostname}: {probe.stderr}"
    return int(probe.stdout.strip())


def env_file(host, path: str) -> dict[str, str]:
    """KEY=value lines of an environment file on a test host."""
    return dict(line.split("=", 1) for line in host.check_output(f"cat {path}").splitlines()
                if "=" in line and not line.startswith("#"))


@pytest.fixture(scope="module")
def moved(manifest):
    """The moved endpoints as the inventory sets them, checked present in the manifest."""
    ports = inventory_ports()
    if not set(ports) <= set(manifest.hosts):
        pytest.skip(f"the stack under test ({manifest.name}) is not the default scenario, whose host_vars move the ports")
    django_host = next(h for h, v in ports.items() if "django_port" in v)
    centrifugo_host = next(h for h, v in ports.items() if "centrifugo_instances" in v)
    assert [g.port for g in manifest.gunicorn_on(django_host)] == [ports[django_host]["django_port"]]
    assert [d.port for d in manifest.daphne_on(django_host)] == ports[django_host]["django_daphne_ports"]
    instance = ports[centrifugo_host]["centrifugo_instances"][0]
    assert [(n.port, n.internal_port) for n in manifest.centrifugo_on(centrifugo_host)] == [
        (instance["port"], instance["internal_port"])]
    return {"django": manifest.gunicorn_on(django_host)[0], "daphne": manifest.daphne_on(django_host),
            "centrifugo": manifest.centrifugo_on(centrifugo_host)[0]}


def test_centrifugo_proxies_call_django_on_its_port(moved, manifest, host_by_name):
    # Through nginx's private server, whose upstream is the moved gunicorn port.
    base = manifest.nginx[0].proxy_url
    for host in manifest.hosts_in("centrifugo"):
        config = json.loads(host_by_name[host].check_output("cat /etc/centrifugo/config.json"))
        assert config["client"]["proxy"]["connect"]["endpoint"] == f"{base}/connect/"
        assert config["channel"]["proxy"]["subscribe"]["endpoint"] == f"{base}/subscribe/"
        assert config["channel"]["proxy"]["publish"]["endpoint"] == f"{base}/publish/"
        # the path itself, from the Centrifugo host through the firewall and nginx's private server to
        # gunicorn (a GET of a proxy endpoint: Django answers 405, nginx's own 404 would mean no route)
        assert get(host_by_name[host], f"{base}/connect/") == 405


def test_django_reaches_redis_and_every_instance_on_its_internal_port(manifest, host_by_name):
    redis = manifest.redis.servers[0]
    for host in manifest.hosts_in("django"):
        env = env_file(host_by_name[host], "/etc/chat/chat.env")
        assert env["CENTRIFUGO_HTTP_API_URL"].split(",") == [node.api_url for node in manifest.centrifugo]
        assert f"@{redis.address}:{redis.port}/0" in env["CHANNELS_REDIS_URL"]
        for node in manifest.centrifugo:
            assert get(host_by_name[host], node.health_url) == 200


def test_nginx_reaches_every_moved_endpoint(moved, manifest, host_by_name):
    nginx = host_by_name[manifest.hosts_in("nginx")[0]]
    assert get(nginx, f"{moved['django'].url}/healthz") == 200
    for daphne in moved["daphne"]:
        assert get(nginx, f"http://{daphne.address}:{daphne.port}/healthz") == 200
    # Centrifugo's client port: a plain GET of the WebSocket endpoint is answered (a 4xx: no upgrade).
    node = moved["centrifugo"]
    assert 200 <= get(nginx, f"http://{node.address}:{node.port}/connection/websocket") < 500


def test_firewall_rules_open_the_moved_ports_to_their_consumers(moved, manifest, host_by_name):
    # gunicorn: nginx only (Centrifugo's proxy calls come through nginx's private server).
    consumers = [manifest.address(h) for h in manifest.hosts_in("nginx")]
    django = host_by_name[moved["django"].host].check_output("nft list table inet rtstack")
    assert f"tcp dport {moved['django'].port} ip saddr" in django
    for address in consumers:
        assert address in django
    for host in manifest.hosts_in("centrifugo"):
        assert manifest.address(host) not in django
    daphne_ports = ", ".join(str(d.port) for d in moved["daphne"])
    assert f"tcp dport {{ {daphne_ports} }} ip saddr" in django
    node = moved["centrifugo"]
    centrifugo = host_by_name[node.host].check_output("nft list table inet rtstack")
    assert f"tcp dport {node.port} ip saddr" in centrifugo
    assert f"tcp dport {node.internal_port} ip saddr" in centrifugo
