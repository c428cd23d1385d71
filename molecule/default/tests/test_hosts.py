"""Host-level checks: services, versions, files and listening sockets of every tier. Units, ports
and addresses come from the stack manifest (build/<stack>/stack.json)."""

from __future__ import annotations

import json

import pytest

#: Tiers whose systemd units must run; the manifest says which host runs which unit.
TIERS = ["redis", "centrifugo", "gunicorn", "daphne", "nginx"]


def expected_in_tier(manifest, tier: str) -> bool:
    """Whether the deployed realtime backend uses ``tier`` (each backend skips the other's)."""
    backend = manifest.realtime_backend
    return not ((tier == "daphne" and backend == "centrifugo") or (tier == "centrifugo" and backend == "channels"))


def upstream_servers(site_conf: str, name: str) -> list[str]:
    """The ``address:port`` of each ``server`` line of nginx's ``upstream <name> { ... }`` block."""
    block = site_conf.split(f"upstream {name} {{", 1)[1].split("}", 1)[0]
    return sorted(line.split()[1] for line in block.splitlines() if line.strip().startswith("server "))


def journal(host, unit: str) -> str:
    """The unit's last journal lines, to print when a check on it fails."""
    return host.run(f"journalctl -u {unit} -n 30 --no-pager").stdout


@pytest.mark.parametrize("tier", TIERS)
def test_service_running_and_enabled(manifest, host_by_name, tier_units, tier):
    units = tier_units(tier)
    if not expected_in_tier(manifest, tier):
        assert units == [], f"realtime_backend {manifest.realtime_backend} but {tier} processes are listed"
        return
    assert units, f"the manifest lists no {tier} process"
    for name, unit in units:
        service = host_by_name[name].service(unit)
        assert service.is_running, f"{unit} on {name}:\n" + journal(host_by_name[name], unit)
        assert service.is_enabled, f"{unit} on {name}"


def test_redis_requires_the_password(manifest, host_by_name):
    server = manifest.redis.servers[0]
    redis = host_by_name[server.host]
    refused = redis.run(f"{manifest.redis.files['cli']} -h {server.address} -p {server.port} ping")
    assert "NOAUTH" in refused.stdout + refused.stderr
    assert redis.socket(f"tcp://{server.address}:{server.port}").is_listening
    assert not redis.socket(f"tcp://0.0.0.0:{server.port}").is_listening
    conf = redis.file(manifest.redis.files["server_conf"])
    assert conf.mode == 0o640 and conf.user == manifest.redis.files["user"]
    assert "client-output-buffer-limit pubsub 256mb 64mb 60" in conf.content_string


def test_centrifugo_is_the_pinned_version_built_from_source(manifest, hosts):
    version = manifest.versions["centrifugo"]
    assert version
    for host in hosts["centrifugo"]:
        out = host.check_output("/usr/local/bin/centrifugo version")
        assert f"v{version}" in out


def test_centrifugo_config_is_identical_and_node_name_per_instance(manifest, groups, host_by_name):
    """config.json is the same file on every node; each instance's name and ports are in its
    environment file, as the manifest lists them (a host's only instance is named after the host;
    names are unique), and no other instance is configured."""
    configs = []
    for name in groups["centrifugo"]:
        host = host_by_name[name]
        config = json.loads(host.file("/etc/centrifugo/config.json").content_string)
        assert "node" not in config
        configs.append(config)
        assert host.file("/etc/centrifugo/config.json").mode == 0o640
        instances = manifest.centrifugo_on(name)
        assert instances, f"the manifest lists no instance on {name}"
        for node in instances:
            if len(instances) == 1:  # a host's only instance is named after the host
                assert node.name == name
            assert node.unit == f"centrifugo@{node.port}.service"
            env = host.file(f"/etc/centrifugo/instances/{node.port}.env")
            assert f"CENTRIFUGO_NODE_NAME={node.name}\n" in env.content_string
            assert f"CENTRIFUGO_HTTP_SERVER_PORT={node.port}\n" in env.content_string
            assert f"CENTRIFUGO_HTTP_SERVER_INTERNAL_PORT={node.internal_port}\n" in env.content_string
            assert env.mode == 0o640
        files = host.check_output("find /etc/centrifugo/instances -name '*.env' -printf '%f\\n'").split()
        assert sorted(files) == sorted(f"{node.port}.env" for node in instances)
    names = [node.name for node in manifest.centrifugo]
    assert len(set(names)) == len(names), f"node names are not unique: {names}"
    assert all(config == configs[0] for config in configs[1:])
    config = configs[0]
    assert config["engine"]["type"] == "redis"
    rooms = {ns["name"]: ns for ns in config["channel"]["namespaces"]}["rooms"]
    assert rooms["history_size"] > 0 and rooms["force_recovery"] and rooms["presence"]
    assert rooms["subscribe_proxy_enabled"] and rooms["publish_proxy_enabled"]
    assert "Cookie" in config["client"]["proxy"]["connect"]["http_headers"]


def test_centrifugo_unit_limits(manifest, host_by_name):
    assert manifest.centrifugo
    for node in manifest.centrifugo:
        props = host_by_name[node.host].service(node.unit).systemd_properties
        assert int(props["LimitNOFILE"]) >= 65536
        # TimeoutStopUSec is rendered like "40s": longer than shutdown.timeout (30s).
        assert props["TimeoutStopUSec"] == "40s"


def test_centrifugo_health_and_metrics_on_internal_port(manifest, host_by_name):
    assert manifest.centrifugo
    for node in manifest.centrifugo:
        host = host_by_name[node.host]
        assert host.socket(f"tcp://{node.address}:{node.port}").is_listening
        assert host.socket(f"tcp://{node.address}:{node.internal_port}").is_listening
        assert node.health_url == f"http://{node.address}:{node.internal_port}/health"
        health = host.run(f"python3 -c \"import urllib.request as u; print(u.urlopen('{node.health_url}').status)\"")
        assert health.stdout.strip() == "200", health.stderr
        metrics = host.check_output(
            f"python3 -c \"import urllib.request as u; print(u.urlopen('{node.metrics_url}').read().decode())\"")
        assert "centrifugo_node_num_clients" in metrics


def test_nginx_upstream_lists_every_centrifugo_node(manifest, hosts):
    """nginx's upstreams are exactly the manifest's gunicorn, Centrifugo and daphne endpoints."""
    site = hosts["nginx"][0].file("/etc/nginx/sites-available/chat.conf").content_string
    assert manifest.gunicorn
    assert upstream_servers(site, "django") == sorted(f"{g.address}:{g.port}" for g in manifest.gunicorn)
    if manifest.centrifugo:
        assert upstream_servers(site, "centrifugo") == sorted(f"{n.address}:{n.port}" for n in manifest.centrifugo)
    if manifest.daphne:
        assert upstream_servers(site, "daphne") == sorted(f"{d.address}:{d.port}" for d in manifest.daphne)
    assert expected_in_tier(manifest, "centrifugo") == bool(manifest.centrifugo)
    nginx_conf = hosts["nginx"][0].file("/etc/nginx/nginx.conf").content_string
    assert "map $http_upgrade $connection_upgrade" in nginx_conf
    assert hosts["nginx"][0].run("nginx -t").rc == 0


def test_django_settings_file_is_private(hosts):
    for host in hosts["django"]:
        env = host.file("/etc/chat/chat.env")
        assert env.mode == 0o640 and env.user == "root" and env.group == "chat"
