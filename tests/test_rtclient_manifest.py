"""rtclient.manifest on a sample manifest (tests/fixtures/stack.json: sentinel Redis, PostgreSQL,
two instances on one Centrifugo host, two Django hosts with two daphne processes each): the typed
view, the lookups, where the file is looked for, and the errors. No stack needed."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from rtclient import manifest as mf
from rtclient.manifest import (
    CentrifugoInstance,
    DjangoEndpoint,
    Endpoint,
    Manifest,
    ManifestError,
    Nginx,
    load_manifest,
)

SAMPLE = Path(__file__).resolve().parent / "fixtures" / "stack.json"


@pytest.fixture
def manifest() -> Manifest:
    return load_manifest(SAMPLE)


@pytest.fixture
def raw() -> dict:
    return json.loads(SAMPLE.read_text())


def test_top_level_fields(manifest):
    assert manifest.path == SAMPLE
    assert manifest.name == "sample-ha"
    assert len(manifest.topology_sha256) == 64 and int(manifest.topology_sha256, 16) >= 0
    assert manifest.site_url == "https://127.0.0.1:28443"
    assert manifest.site_http_url == "http://127.0.0.1:28080"
    assert manifest.public_origins == ("https://127.0.0.1:28443", "https://localhost:28443")
    assert (manifest.realtime_backend, manifest.centrifugo_client_auth, manifest.redis_mode) == (
        "both", "proxy", "sentinel")
    assert manifest.versions == {"centrifugo": "6.9.6", "app": "0.1.0"}
    assert manifest.centrifugo_mode == "l7"
    assert manifest.channel_layer == "redis"
    assert manifest.centrifugo_websocket_url == "wss://127.0.0.1:28443/connection/websocket"
    # The raw document stays reachable by key (the verify fixtures read site_http_url this way).
    assert manifest["site_http_url"] == "http://127.0.0.1:28080"
    with pytest.raises(KeyError):
        manifest["no-such-key"]


def test_centrifugo_instances_in_host_then_port_order(manifest):
    nodes = manifest.centrifugo
    assert all(isinstance(node, CentrifugoInstance) for node in nodes)
    assert [(n.host, n.port, n.internal_port) for n in nodes] == [
        ("s-centrifugo-1", 8000, 9000), ("s-centrifugo-1", 8010, 9010), ("s-centrifugo-2", 8020, 9020)]
    assert [n.name for n in nodes] == ["s-centrifugo-1-8000", "s-centrifugo-1-8010", "s-centrifugo-2"]
    last = nodes[-1]
    assert last.address == "172.30.0.7"
    assert last.unit == "centrifugo@8020.service"
    assert last.client_url == "ws://172.30.0.7:8020/connection/websocket"
    assert last.api_url == "http://172.30.0.7:9020/api"
    assert last.health_url == "http://172.30.0.7:9020/health"
    assert last.metrics_url == "http://172.30.0.7:9020/metrics"
    assert [n.port for n in manifest.centrifugo_on("s-centrifugo-1")] == [8000, 8010]
    assert manifest.centrifugo_on("s-django-1") == []


def test_django_endpoints(manifest):
    assert manifest.gunicorn == (
        DjangoEndpoint("s-django-1", "172.30.0.8", 8005, "http://172.30.0.8:8005"),
        DjangoEndpoint("s-django-2", "172.30.0.9", 8005, "http://172.30.0.9:8005"))
    assert [(d.host, d.port, d.url) for d in manifest.daphne_on("s-django-2")] == [
        ("s-django-2", 8111, "ws://172.30.0.9:8111"), ("s-django-2", 8112, "ws://172.30.0.9:8112")]
    assert len(manifest.daphne) == 4
    assert [g.port for g in manifest.gunicorn_on("s-django-1")] == [8005]
    assert manifest.daphne_on("s-nginx-1") == []


def test_redis_postgresql_nginx(manifest):
    assert [(s.host, s.port) for s in manifest.redis.servers] == [
        ("s-redis-1", 6379), ("s-redis-2", 6379), ("s-redis-3", 6379)]
    assert manifest.redis.sentinels[1] == Endpoint("s-redis-2", "172.30.0.3", 26379)
    assert manifest.redis.sentinel_master_name == "rtstack"
    # Valkey servers watched by Redis's sentinels: each side's names come from the manifest.
    assert (manifest.redis.flavor, manifest.redis.sentinel_flavor) == ("valkey", "redis")
    assert manifest.redis.files == {"cli": "valkey-cli", "server_unit": "valkey-server",
                                    "server_conf": "/etc/valkey/valkey.conf", "user": "valkey",
                                    "sentinel_unit": "redis-sentinel",
                                    "sentinel_log": "/var/log/redis/redis-sentinel.log"}
    assert manifest.postgresql == (Endpoint("s-postgresql-1", "172.30.0.5", 5432),)
    assert manifest.nginx == (Nginx("s-nginx-1", "172.30.0.10", 80, 443, 8090, None, "http://172.30.0.10:8090/centrifugo"),)


def test_hosts_by_group_and_address(manifest):
    assert manifest.hosts_in("centrifugo") == ["s-centrifugo-1", "s-centrifugo-2"]
    assert manifest.hosts_in("redis") == ["s-redis-1", "s-redis-2", "s-redis-3"]
    assert manifest.hosts_in("no-such-group") == []
    groups = manifest.groups()
    assert set(groups) == {"redis", "postgresql", "centrifugo", "django", "nginx"}
    assert groups["django"] == ["s-django-1", "s-django-2"]
    assert manifest.address("s-nginx-1") == "172.30.0.10"
    assert manifest.hosts["s-redis-2"].groups == ("redis",)
    with pytest.raises(KeyError, match="s-nope.*s-redis-1"):
        manifest.address("s-nope")


def test_empty_optional_sections(raw, tmp_path):
    raw.update(realtime_backend="centrifugo", redis_mode="standalone", postgresql=[], site_http_url="")
    raw["django"]["daphne"] = []
    raw["redis"]["sentinels"] = []
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(raw))
    manifest = load_manifest(path)
    assert manifest.daphne == () and manifest.postgresql == () and manifest.redis.sentinels == ()
    assert manifest.site_http_url == ""


def test_missing_file_names_the_path_and_the_fix(tmp_path):
    missing = tmp_path / "build" / "nowhere" / "stack.json"
    with pytest.raises(FileNotFoundError) as error:
        load_manifest(missing)
    assert str(missing) in str(error.value)
    assert "run playbooks/site.yml (it renders the manifest)" in str(error.value)


def test_location_argument_then_env_then_stack_name(monkeypatch, tmp_path):
    monkeypatch.delenv("RTSTACK_MANIFEST", raising=False)
    monkeypatch.delenv("RTSTACK_STACK_NAME", raising=False)
    assert mf.manifest_path() == mf.ROOT / "build" / "local" / "stack.json"
    monkeypatch.setenv("RTSTACK_STACK_NAME", "molecule-ha")
    assert mf.manifest_path() == mf.ROOT / "build" / "molecule-ha" / "stack.json"
    monkeypatch.setenv("RTSTACK_MANIFEST", str(SAMPLE))
    assert mf.manifest_path() == SAMPLE
    assert load_manifest().name == "sample-ha"
    assert mf.manifest_path(tmp_path / "x.json") == tmp_path / "x.json"
    monkeypatch.delenv("RTSTACK_MANIFEST")
    monkeypatch.setenv("RTSTACK_STACK_NAME", "no-such-stack-for-tests")
    with pytest.raises(FileNotFoundError, match="build/no-such-stack-for-tests/stack.json"):
        load_manifest()


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update(schema=2), "schema 2"),
    (lambda d: d.pop("site_url"), "'site_url'"),
    (lambda d: d["centrifugo"][1].pop("api_url"), "centrifugo[1].'api_url'"),
    (lambda d: d["redis"].pop("sentinels"), "redis.'sentinels'"),
    (lambda d: d["django"]["daphne"][0].update(port="eight"), "django.daphne[0]"),
    (lambda d: d.update(nginx={"host": "x"}), "'nginx' must be a list"),
])
def test_malformed_manifest_is_refused_naming_the_key(raw, tmp_path, mutate, message):
    broken = copy.deepcopy(raw)
    mutate(broken)
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ManifestError) as error:
        load_manifest(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_not_json_is_refused(tmp_path):
    path = tmp_path / "stack.json"
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="not JSON"):
        load_manifest(path)
