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
