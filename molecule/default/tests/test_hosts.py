"""Host-level checks: services, versions, files and listening sockets of every tier."""

from __future__ import annotations

import json

import pytest

# (inventory group, unit). realtime_backend: both (inventories/local) adds two daphne processes
# per Django host.
SERVICES = [
    ("redis", "redis-server"),
    ("centrifugo", "centrifugo@8000"),
    ("django", "chat-gunicorn"),
    ("django", "chat-daphne@8101"),
    ("django", "chat-daphne@8102"),
    ("nginx", "nginx"),
]


def journal(host, unit: str) -> str:
    """The unit's last journal lines, to print when a check on it fails."""
    return host.run(f"journalctl -u {unit} -n 30 --no-pager").stdout


@pytest.mark.parametrize("group,unit", SERVICES, ids=[unit for _, unit in SERVICES])
def test_service_running_and_enabled(hosts, group, unit):
    for host in hosts[group]:
        service = host.service(unit)
        assert service.is_running, journal(host, unit)
        assert service.is_enabled


def test_redis_requires_the_password(hosts, address, groups):
    redis = hosts["redis"][0]
    ip = address[groups["redis"][0]]
    refused = redis.run(f"redis-cli -h {ip} ping")
    assert "NOAUTH" in refused.stdout + refused.stderr
    assert redis.socket(f"tcp://{ip}:6379").is_listening
    assert not redis.socket("tcp://0.0.0.0:6379").is_listening
    conf = redis.file("/etc/redis/redis.conf")
    assert conf.mode == 0o640 and conf.user == "redis"
    assert "client-output-buffer-limit pubsub 256mb 64mb 60" in conf.content_string


def test_centrifugo_is_the_pinned_version_built_from_source(hosts):
    for host in hosts["centrifugo"]:
        out = host.check_output("/usr/local/bin/centrifugo version")
        assert "v6.9.6" in out


def test_centrifugo_config_is_identical_and_node_name_per_instance(hosts, groups):
    """config.json is the same file on every node; each instance's name and ports are in its
    environment file (one instance, centrifugo@8000, per host here: named after the host)."""
    configs = []
    for name, host in zip(groups["centrifugo"], hosts["centrifugo"]):
        config = json.loads(host.file("/etc/centrifugo/config.json").content_string)
        assert "node" not in config
        configs.append(config)
        assert host.file("/etc/centrifugo/config.json").mode == 0o640
        env = host.file("/etc/centrifugo/instances/8000.env")
        assert f"CENTRIFUGO_NODE_NAME={name}\n" in env.content_string
        assert "CENTRIFUGO_HTTP_SERVER_PORT=8000\n" in env.content_string
        assert env.mode == 0o640
    assert all(config == configs[0] for config in configs[1:])
    config = configs[0]
    assert config["engine"]["type"] == "redis"
    rooms = {ns["name"]: ns for ns in config["channel"]["namespaces"]}["rooms"]
    assert rooms["history_size"] > 0 and rooms["force_recovery"] and rooms["presence"]
    assert rooms["subscribe_proxy_enabled"] and rooms["publish_proxy_enabled"]
    assert "Cookie" in config["client"]["proxy"]["connect"]["http_headers"]


def test_centrifugo_unit_limits(hosts):
    for host in hosts["centrifugo"]:
        props = host.service("centrifugo@8000").systemd_properties
        assert int(props["LimitNOFILE"]) >= 65536
        # TimeoutStopUSec is rendered like "40s": longer than shutdown.timeout (30s).
        assert props["TimeoutStopUSec"] == "40s"


def test_centrifugo_health_and_metrics_on_internal_port(hosts, address, groups):
    for name, host in zip(groups["centrifugo"], hosts["centrifugo"]):
        ip = address[name]
        assert host.socket(f"tcp://{ip}:8000").is_listening
        assert host.socket(f"tcp://{ip}:9000").is_listening
        assert host.run(f"python3 -c \"import urllib.request as u; print(u.urlopen('http://{ip}:9000/health').status)\"").stdout.strip() == "200"
        metrics = host.check_output(f"python3 -c \"import urllib.request as u; print(u.urlopen('http://{ip}:9000/metrics').read().decode())\"")
        assert "centrifugo_node_num_clients" in metrics


def test_nginx_upstream_lists_every_centrifugo_node(hosts, address, groups):
    site = hosts["nginx"][0].file("/etc/nginx/sites-available/chat.conf").content_string
    for name in groups["centrifugo"]:
        assert f"server {address[name]}:8000" in site
    for name in groups["django"]:
        assert f"server {address[name]}:8001" in site
    nginx_conf = hosts["nginx"][0].file("/etc/nginx/nginx.conf").content_string
    assert "map $http_upgrade $connection_upgrade" in nginx_conf
    assert hosts["nginx"][0].run("nginx -t").rc == 0


def test_django_settings_file_is_private(hosts):
    for host in hosts["django"]:
        env = host.file("/etc/chat/chat.env")
        assert env.mode == 0o640 and env.user == "root" and env.group == "chat"
