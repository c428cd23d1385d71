"""Unit tests of plugins/filter/rtstack_secrets.py: what the secret rotation (playbooks/rotate_secrets.yml)
and the redis role's ``acl`` entry point compute."""

from __future__ import annotations

import hashlib

import pytest

from tests.test_plugins import load_plugin

secrets = load_plugin("rtstack_secrets")

CATALOG = [
    {"name": "redis_requirepass", "file": "redis_requirepass", "length": 40, "min_length": 16},
    {"name": "django_secret_key", "file": "django_secret_key", "length": 64, "min_length": 50},
]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("requested, names", [
    ("all", ["redis_requirepass", "django_secret_key"]),
    ("django_secret_key", ["django_secret_key"]),
    ("django_secret_key, redis_requirepass", ["redis_requirepass", "django_secret_key"]),
    (["django_secret_key", "django_secret_key"], ["django_secret_key"]),
])
def test_rotation_select_keeps_catalog_order(requested, names):
    assert [entry["name"] for entry in secrets.rotation_select(CATALOG, requested)] == names


@pytest.mark.parametrize("requested, message", [
    ("", "rotate_secrets is empty"),
    ("redis_password", "does not rotate; it rotates: all, redis_requirepass, django_secret_key"),
])
def test_rotation_select_refuses_nothing_and_unknown_names(requested, message):
    with pytest.raises(secrets.AnsibleFilterError, match=message):
        secrets.rotation_select(CATALOG, requested)


def test_rotation_problems_generated_secrets_need_no_values():
    assert secrets.rotation_problems(CATALOG, True, {}) == []


def test_rotation_problems_names_the_vault_secret_without_a_value():
    problems = secrets.rotation_problems(CATALOG, False, {"redis_requirepass": "x" * 16})
    assert len(problems) == 1
    assert "rotate_new_values.django_secret_key" in problems[0]


def test_rotation_problems_names_a_short_new_value_and_the_minimum():
    problems = secrets.rotation_problems(CATALOG[:1], True, {"redis_requirepass": "short"})
    assert problems == ["rotate_new_values.redis_requirepass is 5 characters long; the new redis_requirepass "
                        "needs at least 16."]


def test_redis_acl_setuser_current_then_previous_hashes_once_each():
    users = [{"name": "default", "password": "new-default"}, {"name": "app", "password": "new-app", "rules": "~*"}]
    commands = secrets.redis_acl_setuser(users, {"app": ["old-app", "new-app", ""]})
    assert commands == [
        f"ACL SETUSER default resetpass #{sha('new-default')}",
        f"ACL SETUSER app resetpass #{sha('new-app')} #{sha('old-app')}",
    ]


def test_redis_acl_setuser_refuses_a_user_without_password():
    with pytest.raises(secrets.AnsibleFilterError, match="needs a name and a password"):
        secrets.redis_acl_setuser([{"name": "app", "password": ""}])


def test_redis_cli_script_logs_in_with_each_password_then_marks_the_commands():
    script = secrets.redis_cli_script(["old", "", "new"], ["ACL SETUSER a resetpass #x", "CONFIG REWRITE"])
    assert script == "AUTH old\nAUTH new\nPING rtstack-acl\nACL SETUSER a resetpass #x\nCONFIG REWRITE\n"


@pytest.mark.parametrize("passwords, commands", [([], ["PING"]), (["a\nFLUSHALL"], ["PING"]), (["a"], ["PING\nX"])])
def test_redis_cli_script_refuses_no_password_and_newlines(passwords, commands):
    with pytest.raises(secrets.AnsibleFilterError):
        secrets.redis_cli_script(passwords, commands)


@pytest.mark.parametrize("stdout, ok", [
    ("WRONGPASS invalid username-password pair\nOK\nrtstack-acl\nOK\nOK\n", True),
    ("OK\nrtstack-acl\nOK\nERR Error saving the configuration\n", False),
    ("WRONGPASS x\nWRONGPASS x\nrtstack-acl\nNOAUTH Authentication required.\n", False),
    ("OK\nrtstack-acl\n", False),
    ("OK\nOK\n", False),
])
def test_redis_cli_all_ok_reads_only_the_answers_after_the_marker(stdout, ok):
    assert secrets.redis_cli_all_ok(stdout) is ok


def stack_with_postgresql(**pg_vars):
    """tests/test_plugins.py's five-host stack plus a PostgreSQL host p1 with ``pg_vars``."""
    from tests.test_plugins import facts, inventory

    hostvars, groups = inventory()
    hostvars["p1"] = {**facts("10.0.0.6"), "realtime_backend": "both",
                      "stack_public_origins": ["https://chat.example.com"], **pg_vars}
    groups["postgresql"] = ["p1"]
    return hostvars, groups


@pytest.mark.parametrize("pg_vars, login_user", [
    ({}, "chat"),
    ({"postgresql_app_login_users": ["chat_blue", "chat_green"]}, "chat_blue"),
    ({"postgresql_app_login_users": ["chat_blue", "chat_green"], "postgresql_app_login_user": "chat_green"},
     "chat_green"),
])
def test_topology_gives_the_app_its_login_role(pg_vars, login_user):
    topology = load_plugin("rtstack_topology")
    (server,) = topology.topology(*stack_with_postgresql(**pg_vars))["postgresql"]
    assert server["user"] == "chat" and server["login_user"] == login_user


@pytest.mark.parametrize("pg_vars", [
    {"postgresql_app_login_users": ["chat_blue"]},
    {"postgresql_app_login_users": ["chat_blue", "chat_blue"]},
    {"postgresql_app_login_users": ["chat_blue", "chat_green"], "postgresql_app_login_user": "chat"},
])
def test_topology_refuses_login_roles_that_cannot_alternate(pg_vars):
    topology = load_plugin("rtstack_topology")
    with pytest.raises(topology.TopologyError, match="postgresql_app_login_users must be two different role names"):
        topology.topology(*stack_with_postgresql(**pg_vars))


def test_redis_cli_summary_names_commands_and_answers_without_values():
    commands = ["ACL SETUSER default resetpass #abc", "SENTINEL CONFIG SET sentinel-pass s3cret", "CONFIG REWRITE"]
    stdout = "WRONGPASS x\nOK\nrtstack-acl\nOK\nERR Invalid argument 's3cret'\n"
    summary = secrets.redis_cli_summary(stdout, commands)
    assert summary == "ACL SETUSER default: OK; SENTINEL CONFIG SET sentinel-pass: ERR; CONFIG REWRITE: (none)"
    assert "s3cret" not in summary and "abc" not in summary
    assert secrets.redis_cli_summary("WRONGPASS x\n", commands).startswith("no answer after the login")
