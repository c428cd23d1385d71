"""The watchdog's own helpers (roles/centrifugo/files/usr/local/sbin/centrifugo-watchdog): its token is a
JWT that PyJWT accepts with the key, its Redis commands are RESP, its env-file reader reads the role's
instance files. Its behaviour is proved by the `ha` scenario's node-cut-from-Redis drill."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import io
from pathlib import Path

import jwt
import pytest

ROOT = Path(__file__).resolve().parents[1]
PATH = ROOT / "roles/centrifugo/files/usr/local/sbin/centrifugo-watchdog"


def load_watchdog():
    loader = importlib.machinery.SourceFileLoader("centrifugo_watchdog", str(PATH))
    spec = importlib.util.spec_from_loader("centrifugo_watchdog", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


watchdog = load_watchdog()


def test_token_is_an_hs256_jwt_with_server_side_channels():
    token = watchdog.hs256_token("k" * 40, {"sub": "rtstack-watchdog", "exp": 4102444800,
                                            "channels": ["rtstack_watchdog.node-1"]})
    claims = jwt.decode(token, "k" * 40, algorithms=["HS256"])
    assert claims["channels"] == ["rtstack_watchdog.node-1"] and claims["sub"] == "rtstack-watchdog"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "x" * 40, algorithms=["HS256"])


def test_resp_round_trip():
    assert watchdog.resp_command("AUTH", "user", "pässword") == \
        b"*3\r\n$4\r\nAUTH\r\n$4\r\nuser\r\n$9\r\np\xc3\xa4ssword\r\n"
    stream = io.BytesIO(b"+PONG\r\n:3\r\n*2\r\n$8\r\n10.0.0.2\r\n$4\r\n6379\r\n$-1\r\n")
    assert [watchdog.resp_read(stream) for _ in range(4)] == ["PONG", 3, ["10.0.0.2", "6379"], None]
    with pytest.raises(RuntimeError, match="WRONGPASS"):
        watchdog.resp_read(io.BytesIO(b"-WRONGPASS invalid username-password pair\r\n"))
    with pytest.raises(ConnectionError):
        watchdog.resp_read(io.BytesIO(b""))


def test_env_file_of_an_instance(tmp_path):
    path = tmp_path / "8000.env"
    path.write_text("# Ansible managed\nCENTRIFUGO_NODE_NAME=node-1\nCENTRIFUGO_HTTP_SERVER_PORT=8000\n\n")
    assert watchdog.read_env_file(path) == {"CENTRIFUGO_NODE_NAME": "node-1", "CENTRIFUGO_HTTP_SERVER_PORT": "8000"}


def test_broker_unreachable_when_nothing_answers():
    redis = {"user": "centrifugo", "password": "pw", "address": ["redis://127.0.0.1:9"]}
    assert watchdog.broker_reachable(redis, timeout=0.5) is False
    sentinel = {"user": "centrifugo", "password": "pw", "sentinel_address": ["127.0.0.1:9,127.0.0.1:7"],
                "sentinel_master_name": "rtstack", "sentinel_password": "s"}
    assert watchdog.broker_reachable(sentinel, timeout=0.5) is False


def test_settings_are_read_again_when_config_json_changes(tmp_path):
    """A secret rotation rewrites config.json and restarts the instance: the watchdog takes the new API key,
    token key and Redis settings without a restart of its own."""
    import argparse
    import json
    import os

    (tmp_path / "8000.env").write_text(
        "CENTRIFUGO_NODE_NAME=node-1\nCENTRIFUGO_HTTP_SERVER_ADDRESS=10.0.0.2\nCENTRIFUGO_HTTP_SERVER_PORT=8000\n"
        "CENTRIFUGO_HTTP_SERVER_INTERNAL_ADDRESS=10.0.0.2\nCENTRIFUGO_HTTP_SERVER_INTERNAL_PORT=9000\n")
    config = tmp_path / "config.json"

    def write(key: str, mtime: int) -> None:
        config.write_text(json.dumps({"http_api": {"key": key}, "client": {"token": {"hmac_secret_key": key * 2}},
                                      "engine": {"redis": {"password": key}}}))
        os.utime(config, ns=(mtime, mtime))

    write("old", 1_000_000_000)
    options = argparse.Namespace(instance="8000", instance_env_dir=str(tmp_path), config=str(config), unit="", peers="")
    dog = watchdog.Watchdog(options)
    assert (dog.api_key, dog.token_key, dog.redis) == ("old", "oldold", {"password": "old"})
    assert dog.reload_config() is False
    write("new", 2_000_000_000)
    assert dog.reload_config() is True
    assert (dog.api_key, dog.token_key, dog.redis) == ("new", "newnew", {"password": "new"})
