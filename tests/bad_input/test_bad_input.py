"""Bad inventory values fail in the preflight play, before any host changes, with a message that
names the variable and the fix.

Each case runs the real `playbooks/site.yml` (in check mode, against hosts that are the controller
itself over the local connection, so nothing could change even if a check were missing) with the
local inventory's group_vars plus one bad value, and asserts that:
  * ansible-playbook fails,
  * the expected message is printed,
  * no play of a tier (redis, centrifugo, django, nginx) started: the failure came first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TIER_PLAY = "PLAY [Deploy the"


def make_inventory(tmp_path: Path, groups: dict[str, dict[str, dict]]) -> Path:
    """An inventory whose hosts are the controller over the local connection, with the local
    inventory's group_vars (linked) and generated secrets under tmp_path."""
    inventory_dir = tmp_path / "inventory"
    inventory_dir.mkdir()
    (inventory_dir / "group_vars").symlink_to(ROOT / "inventories/local/group_vars")
    children = {group: {"hosts": hosts} for group, hosts in groups.items()}
    data = {"all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
                    "children": children}}
    path = inventory_dir / "hosts.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def good_groups() -> dict[str, dict[str, dict]]:
    return {
        "redis": {"bad-redis-1": {"rtstack_private_address": "127.0.0.11"}},
        "centrifugo": {"bad-centrifugo-1": {"rtstack_private_address": "127.0.0.2"},
                       "bad-centrifugo-2": {"rtstack_private_address": "127.0.0.3"}},
        "django": {"bad-django-1": {"rtstack_private_address": "127.0.0.4"}},
        "nginx": {"bad-nginx-1": {"rtstack_private_address": "127.0.0.5"}},
        # The local inventory turns monitoring on: Prometheus beside Redis, as inventories/local does.
        "monitoring": {"bad-redis-1": {}},
    }


def run_playbook(tmp_path: Path, groups, extra_vars: dict | None = None, playbook: str = "site.yml"):
    inventory = make_inventory(tmp_path, groups)
    cmd = ["ansible-playbook", "-i", str(inventory), str(ROOT / "playbooks" / playbook), "--check"]
    if extra_vars:
        extra = tmp_path / "extra.yml"
        extra.write_text(yaml.safe_dump(extra_vars))
        cmd += ["-e", f"@{extra}"]
    env = dict(os.environ, RTSTACK_CREDENTIALS_DIR=str(tmp_path / "credentials"),
               ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"), RTSTACK_STACK_NAME="bad-input",
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.timer")
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_good_inventory_passes_preflight(tmp_path):
    result = run_playbook(tmp_path, good_groups(), playbook="preflight.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def without(groups, group):
    return {**groups, group: {}}


def three_redis_servers():
    """The good groups with three Redis servers, as Sentinel mode needs."""
    return {**good_groups(), "redis": {f"bad-redis-{n}": {"rtstack_private_address": f"127.0.0.1{n}"} for n in (1, 2, 3)}}


def with_hostvar(groups, group, host, **hostvars):
    changed = {g: {h: dict(v) for h, v in hosts.items()} for g, hosts in groups.items()}
    changed[group][host].update(hostvars)
    return changed


# (case id, groups, extra vars, text the failure must contain)
CASES = [
    ("no-redis-host", without(good_groups(), "redis"), None,
     'The inventory has no host in the "redis" group: Centrifugo\'s Redis engine needs one'),
    ("two-centrifugo-on-one-port",
     with_hostvar(good_groups(), "centrifugo", "bad-centrifugo-2", rtstack_private_address="127.0.0.2"), None,
     "Two services would listen on 127.0.0.2:8000: centrifugo_instances port (centrifugo@8000.service) of "
     "bad-centrifugo-1 and centrifugo_instances port (centrifugo@8000.service) of bad-centrifugo-2"),
    ("host-address-not-an-ip",
     with_hostvar(good_groups(), "django", "bad-django-1", rtstack_private_address="app-1"), None,
     "bad-django-1: rtstack_private_address must be an IP address (got 'app-1')"),
    ("client-port-equals-internal-port", good_groups(), {"centrifugo_internal_port": 8000},
     "bad-centrifugo-1: centrifugo_instances uses port(s) [8000] twice"),
    ("two-instances-one-port", good_groups(),
     {"centrifugo_instances": [{"port": 8000, "internal_port": 9000}, {"port": 8000, "internal_port": 9010}]},
     "bad-centrifugo-1: centrifugo_instances uses port(s) [8000] twice"),
    ("two-redis-hosts-standalone", {**good_groups(), "redis": {"bad-redis-1": {"rtstack_private_address": "127.0.0.11"},
                                                       "bad-redis-2": {"rtstack_private_address": "127.0.0.12"}}}, None,
     "With several Redis hosts, choose sharded"),
    ("malformed-centrifugo-version", good_groups(), {"centrifugo_version": "v6.9"},
     'centrifugo_version must be a Centrifugo v6 release as MAJOR.MINOR.PATCH without a leading "v" (got "v6.9")'),
    ("centrifugo-v5", good_groups(), {"centrifugo_version": "5.4.9"},
     "centrifugo_version must be a Centrifugo v6 release"),
    ("unknown-install-method", good_groups(), {"centrifugo_install_method": "apt"},
     "centrifugo_install_method"),
    ("short-redis-password", good_groups(), {"redis_requirepass": "short"},
     "redis_requirepass must be set and at least 16 characters long"),
    ("namespace-with-illegal-characters", good_groups(),
     {"centrifugo_namespaces": [{"name": "rooms/private", "presence": True}]},
     "Each name in centrifugo_namespaces must match"),
    ("no-allowed-origins", good_groups(), {"stack_public_origins": []},
     "centrifugo_client_allowed_origins must list the site's origins"),
    ("redis-on-all-interfaces", good_groups(), {"redis_bind_addresses": ["0.0.0.0"]},
     "redis_bind_addresses must be a non-empty list of IP addresses without 0.0.0.0"),
    ("tls-without-certificate", good_groups(),
     {"nginx_tls_self_signed": False, "nginx_tls_certificate_src": "", "nginx_tls_certificate_key_src": ""},
     "nginx_tls_enabled is true but there is no certificate: set nginx_tls_certificate_src"),
    ("http-and-https-on-one-port", good_groups(), {"nginx_tls_listen_port": 80},
     "Two services would listen on 127.0.0.5:80: nginx_listen_port of bad-nginx-1 and nginx_tls_listen_port of bad-nginx-1"),
    ("gunicorn-port-collides-with-centrifugo",
     {**good_groups(), "django": {"bad-centrifugo-1": {"django_port": 9000}}}, None,
     "Two services would listen on 127.0.0.2:9000: centrifugo_instances internal_port (centrifugo@8000.service)"
     " of bad-centrifugo-1 and django_port of bad-centrifugo-1"),
    ("redis-acl-user-named-default", good_groups(),
     {"redis_acl_users": [{"name": "default", "password": "x" * 20, "rules": "+@all"}]},
     'Each item of redis_acl_users needs a unique name (letters, digits, _ and -, not "default")'),
    ("namespaces-not-a-list", good_groups(), {"centrifugo_namespaces": "rooms"},
     "centrifugo_namespaces"),
    ("firewall-source-not-an-address", good_groups(),
     {"firewall_enabled": True, "firewall_admin_sources": ["office"]},
     "firewall_admin_sources / firewall_trusted_sources lists of IP addresses or networks"),
    ("short-token-key", good_groups(), {"centrifugo_client_token_hmac_secret_key": "too-short"},
     "centrifugo_client_token_hmac_secret_key must be empty (no token auth) or at least 32 characters"),
    ("sqlite-with-two-django-hosts",
     {**good_groups(), "django": {"bad-django-1": {"rtstack_private_address": "127.0.0.4"},
                                  "bad-django-2": {"rtstack_private_address": "127.0.0.7"}}}, None,
     'django_database_url is SQLite but the group "django" has 2 hosts'),
    ("unknown-realtime-backend", good_groups(), {"realtime_backend": "websockets"},
     'realtime_backend must be centrifugo, channels or both (got "websockets")'),
    ("unknown-client-auth", good_groups(), {"centrifugo_client_auth": "cookie"},
     'centrifugo_client_auth proxy or jwt (got "cookie")'),
    ("jwt-without-token-key", good_groups(),
     {"centrifugo_client_auth": "jwt", "centrifugo_client_token_hmac_secret_key": ""},
     "jwt needs centrifugo_client_token_hmac_secret_key"),
    ("channels-without-redis-url", good_groups(), {"realtime_backend": "channels", "django_redis_url": ""},
     'realtime_backend "channels" runs Django Channels on daphne, which needs the Redis channel layer'),
    ("nginx-files-above-the-hard-limit", good_groups(),
     {"nginx_worker_connections": 1000000, "nginx_worker_rlimit_nofile": 2000000},
     "the hard open files limit services get on"),
    ("nginx-buffer-size-with-a-unit-nginx-does-not-take", good_groups(), {"nginx_ssl_buffer_size": "4 KB"},
     "nginx_ssl_buffer_size (got 4 KB), nginx_websocket_proxy_buffer_size (got 1k) and"),
    ("centrifugo-mode-unknown", good_groups(), {"nginx_centrifugo_mode": "l3"},
     "nginx_centrifugo_mode must be one of l7, l4 (got 'l3')"),
    ("centrifugo-l4-without-its-certificate", good_groups(),
     {"nginx_centrifugo_mode": "l4", "centrifugo_tls_certificate_src": ""},
     "nginx_centrifugo_mode is l4, so Centrifugo terminates TLS on its client port: set centrifugo_tls_certificate_src"),
    ("go-memory-limit-in-gb", good_groups(), {"centrifugo_go_memory_limit": "1GB"},
     'centrifugo_go_memory_limit empty or a size with B, KiB, MiB, GiB or TiB such as 1GiB (got "1GB")'),
    ("daphne-port-collides-with-gunicorn", good_groups(), {"django_daphne_ports": [8001, 8102]},
     "Two services would listen on 127.0.0.4:8001: django_port of bad-django-1 and django_daphne_ports of bad-django-1"),
    ("sentinels-on-the-redis-servers", {**three_redis_servers(), "redis_sentinel": {
        "bad-redis-1": {}, "bad-redis-2": {}, "bad-redis-3": {}}}, {"redis_mode": "sentinel"},
     'an odd number of sentinel hosts, at least 3, in the group "redis_sentinel" (it has '
     "['bad-redis-1', 'bad-redis-2', 'bad-redis-3']), none of them a Redis server"),
    ("even-number-of-sentinels", {**three_redis_servers(), "redis_sentinel": {"bad-django-1": {}, "bad-nginx-1": {}}},
     {"redis_mode": "sentinel"}, 'an odd number of sentinel hosts, at least 3, in the group "redis_sentinel"'),
    ("postgresql-without-app-password",
     {**good_groups(), "postgresql": {"bad-postgresql-1": {"rtstack_private_address": "127.0.0.6"}}},
     {"postgresql_app_password": ""},
     "postgresql_app_password must be set and at least 16 characters long"),
    ("outbox-without-password",
     {**good_groups(), "postgresql": {"bad-postgresql-1": {"rtstack_private_address": "127.0.0.6"}}},
     {"postgresql_outbox_password": "", "centrifugo_outbox_password": ""},
     "or set stack_outbox: false"),
    ("postgresql-url-without-password",
     {**good_groups(), "django": {"bad-django-1": {"rtstack_private_address": "127.0.0.4"},
                                  "bad-django-2": {"rtstack_private_address": "127.0.0.7"}},
      "postgresql": {"bad-postgresql-1": {"rtstack_private_address": "127.0.0.6"}}},
     {"django_database_password": ""},
     "django_database_url points at PostgreSQL but has no password"),
    ("unknown-centrifugo-transport", good_groups(), {"stack_centrifugo_transports": ["websocket", "long_polling"]},
     "stack_centrifugo_transports must list at least one of websocket, http_stream, sse, each once"),
    ("personal-namespace-defined-twice", good_groups(),
     {"centrifugo_namespaces": [{"name": "rooms"}, {"name": "personal", "history_size": 10}]},
     "the role adds it itself. Set its options in centrifugo_personal_namespace_options"),
    ("room-groups-as-a-string", good_groups(), {"django_rooms": [{"name": "ops", "access": "groups", "groups": "team"}]},
     'never a single string: the lists are declarative'),
    ("user-with-an-unknown-key", good_groups(),
     {"django_users": [{"username": "ops", "password": "pw-ops-123", "email": "ops@example.com"}]},
     "django_users: every user needs a username and a password"),
    ("user-given-twice", good_groups(),
     {"django_users": [{"username": "ops", "password": "pw-ops-123"}, {"username": "ops", "password": "pw-ops-456"}]},
     "django_users: every user needs a username and a password"),
    ("user-staff-as-a-string", good_groups(),
     {"django_users": [{"username": "ops", "password": "pw-ops-123", "staff": "yes"}]},
     "staff and superuser, when given, are true or false (unquoted)"),
    ("room-with-unknown-access-level", good_groups(), {"django_rooms": [{"name": "ops", "access": "public"}]},
     "django_rooms: every room needs a name"),
    ("monitoring-without-a-monitoring-host", without(good_groups(), "monitoring"), None,
     "monitoring_enabled is true but the inventory's monitoring group has no host"),
    ("alert-webhook-not-a-url", good_groups(), {"monitoring_alert_webhook_url": "alerts.example.com/hook"},
     "monitoring_alert_webhook_url must be empty or an http:// or https:// URL"),
    ("debian-11", good_groups(), {"ansible_distribution_major_version": "11", "ansible_distribution_version": "11.11",
                                  "ansible_distribution_release": "bullseye"},
     "runs Debian 11.11 (bullseye): the roles support Debian 12 (bookworm) and Debian 13 (trixie) only"),
    ("redis-flavor-keydb", good_groups(), {"redis_server_flavor": "keydb"},
     "redis_server_flavor must be redis or valkey (got 'keydb')"),
    # The bad-input hosts are the controller, a Debian 12 machine.
    ("valkey-on-debian-12", good_groups(), {"redis_server_flavor": "valkey"},
     "redis_server_flavor valkey needs Debian 13 on every Redis server"),
    ("exporter-password-with-a-dollar", good_groups(), {"redis_exporter_password": "0123456789abcdef$HOME"},
     "monitoring_enabled needs redis_exporter_password (at least 16 characters, without spaces, double quotes"),
    ("login-limit-exempt-not-a-network", good_groups(), {"stack_login_limit_exempt": ["office"]},
     "stack_login_limit_exempt: 'office' is not an IP address or network"),
    ("login-failure-limit-too-low", good_groups(), {"django_login_failure_limit": 1},
     "django_login_failure_limit must be at least 3"),
    ("app-login-roles-one-name", {**good_groups(), "postgresql": {"bad-postgresql-1": {"rtstack_private_address": "127.0.0.6"}}},
     {"postgresql_app_login_users": ["chat_blue"]},
     "postgresql_app_login_users must be two different role names and postgresql_app_login_user one of them"),
    ("secret-key-fallback-too-short", good_groups(), {"django_secret_key_fallbacks": ["short"]},
     "Each of django_secret_key_fallbacks (earlier SECRET_KEYs) must be at least 50 characters long"),
]


@pytest.mark.parametrize("groups,extra_vars,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_fails_before_any_host_changes(tmp_path, groups, extra_vars, message):
    result = run_playbook(tmp_path, groups, extra_vars)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-2000:]
    assert message in output, output[-3000:]
    assert TIER_PLAY not in result.stdout, "a tier play started before the failure"


def vault_inventory_vars(tmp_path: Path) -> None:
    """Turn the inventory of make_inventory into one whose secrets a vault holds: the local group_vars but
    secrets.yml, which becomes plain values (as inventories/production.example reads them from the vault)
    and no credentials_dir."""
    group_vars = tmp_path / "inventory" / "group_vars"
    group_vars.unlink()
    (group_vars / "all").mkdir(parents=True)
    for source in (ROOT / "inventories/local/group_vars/all").glob("*.yml"):
        if source.name != "secrets.yml":
            (group_vars / "all" / source.name).symlink_to(source)
    names = ["redis_requirepass", "centrifugo_redis_password", "django_redis_password", "centrifugo_http_api_key",
             "centrifugo_client_token_hmac_secret_key", "centrifugo_admin_password", "centrifugo_admin_secret",
             "django_secret_key"]
    (group_vars / "all" / "secrets.yml").write_text(yaml.safe_dump({name: "v" * 64 for name in names}))


ROTATION_CASES = [
    # (id, vault-held, extra vars, message)
    ("rotate-vault-secret-without-new-value", True, {"rotate_secrets": "django_secret_key"},
     "django_secret_key is held by the inventory (ansible-vault; no credentials_dir generates it): give its new "
     "value as rotate_new_values.django_secret_key"),
    ("rotate-new-password-too-short", False,
     {"rotate_secrets": "redis_requirepass", "rotate_new_values": {"redis_requirepass": "short"}},
     "rotate_new_values.redis_requirepass is 5 characters long; the new redis_requirepass needs at least 16."),
    ("rotate-unknown-secret", False, {"rotate_secrets": "redis_password"},
     "rotate_secrets names redis_password, which this playbook does not rotate"),
    ("rotate-app-password-without-login-roles", False,
     {"rotate_secrets": "postgresql_app_password", "postgresql_app_login_users": []},
     "Rotating postgresql_app_password without a failed request needs two login roles used in turn"),
]


@pytest.mark.parametrize("vault,extra_vars,message", [c[1:] for c in ROTATION_CASES], ids=[c[0] for c in ROTATION_CASES])
def test_bad_rotation_input_fails_before_any_change(tmp_path, vault, extra_vars, message):
    """playbooks/rotate_secrets.yml refuses a bad request in its plan play: no step started, no new value
    written to the credentials directory."""
    groups = {**good_groups(), "postgresql": {"bad-postgresql-1": {"rtstack_private_address": "127.0.0.6"}}}
    inventory = make_inventory(tmp_path, groups)
    if vault:
        vault_inventory_vars(tmp_path)
    extra = tmp_path / "extra.yml"
    extra.write_text(yaml.safe_dump(extra_vars))
    credentials = tmp_path / "credentials"
    env = dict(os.environ, RTSTACK_CREDENTIALS_DIR=str(credentials), ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"))
    result = subprocess.run(["ansible-playbook", "-i", str(inventory), str(ROOT / "playbooks/rotate_secrets.yml"),
                             "-e", f"@{extra}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-2000:]
    assert message in output, output[-3000:]
    assert "PLAY [Rotation 1/6" not in result.stdout, "a rotation step started before the failure"
    assert not list(credentials.glob("*.next")), "a new value was written to the credentials directory"
