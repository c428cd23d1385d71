"""Security checks of the deployed stack, each through the real path: TLS and its profile, the
HTTP redirect and HSTS, Centrifugo's API key, Redis authentication and ACL users, systemd
sandboxing, and that no secret leaks into journals or world-readable files (Ansible's output: the day-2
``--check --diff -v`` run, day2/test_day2.py).
"""

from __future__ import annotations

import re
import secrets
import shlex
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from rtclient.auth import login_attempt, stack_secrets
from rtclient.playbook import run_playbook

ROOT = Path(__file__).resolve().parents[3]


def tls_handshake(site_url: str, **options) -> str:
    """Handshake with the site's TLS port under the given SSLContext settings; returns the version."""
    parts = urlsplit(site_url)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if "ciphers" in options:
        context.set_ciphers(options["ciphers"])
    context.minimum_version = options.get("minimum", ssl.TLSVersion.MINIMUM_SUPPORTED)
    context.maximum_version = options.get("maximum", ssl.TLSVersion.MAXIMUM_SUPPORTED)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname=parts.hostname) as tls:
            return tls.version()


def test_http_redirects_to_https(site_http_url, site_url):
    response = requests.get(f"{site_http_url}/rooms/lobby/?x=1", allow_redirects=False, timeout=5)
    assert response.status_code == 301
    assert response.headers["Location"] == f"{site_url}/rooms/lobby/?x=1"


def test_https_sends_hsts_and_hides_the_nginx_version(site_url, ca_file):
    response = requests.get(f"{site_url}/accounts/login/", verify=ca_file, timeout=5)
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"] == "max-age=63072000"
    assert response.headers["Server"] == "nginx"


def test_tls_follows_the_intermediate_profile(site_url):
    assert tls_handshake(site_url) == "TLSv1.3"
    assert tls_handshake(site_url, maximum=ssl.TLSVersion.TLSv1_2,
                         ciphers="ECDHE-ECDSA-AES128-GCM-SHA256") == "TLSv1.2"
    with pytest.raises(ssl.SSLError):
        tls_handshake(site_url, minimum=ssl.TLSVersion.TLSv1_1, maximum=ssl.TLSVersion.TLSv1_1,
                      ciphers="DEFAULT:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError):  # no forward secrecy, CBC: not in the profile
        tls_handshake(site_url, maximum=ssl.TLSVersion.TLSv1_2, ciphers="AES128-SHA:@SECLEVEL=0")


def test_centrifugo_api_needs_the_key(manifest, credentials):
    url = f"{manifest.centrifugo[0].api_url}/info"
    refused = requests.post(url, json={}, timeout=5)
    assert refused.status_code == 401
    key = credentials("centrifugo_http_api_key")
    accepted = requests.post(url, json={}, headers={"X-API-Key": key}, timeout=5)
    assert accepted.status_code == 200
    nodes = accepted.json()["result"]["nodes"]
    assert {node["name"] for node in nodes} == {node.name for node in manifest.centrifugo}


def test_centrifugo_admin_is_off(manifest):
    node = manifest.centrifugo[0]
    response = requests.get(f"http://{node.address}:{node.internal_port}/admin/", timeout=5)
    assert response.status_code == 404


def test_redis_acl_user_is_limited_to_centrifugo(manifest, host_by_name, credentials):
    server = manifest.redis.servers[0]
    redis = host_by_name[server.host]
    password = credentials("redis_centrifugo_password")
    cli = (f"REDISCLI_AUTH={password} {manifest.redis.files['cli']} --no-auth-warning -h {server.address} "
           f"-p {server.port} --user centrifugo")
    assert redis.check_output(f"{cli} ping") == "PONG"
    assert redis.check_output(f"{cli} set centrifugo.acl-test 1") == "OK"
    assert "NOPERM" in redis.run(f"{cli} set other-app-key 1").stdout
    assert "NOPERM" in redis.run(f"{cli} flushall").stdout
    assert "NOPERM" in redis.run(f"{cli} keys '*'").stdout
    assert "NOPERM" in redis.run(f"{cli} config get requirepass").stdout
    conf = redis.file(manifest.redis.files["server_conf"]).content_string
    assert password not in conf and credentials("redis_requirepass") not in conf


CHANNELS_PROBE = """
import asyncio
from channels.layers import get_channel_layer
from chat import presence

async def main():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("chat_room.acl-probe", channel)
    await layer.group_send("chat_room.acl-probe", {"type": "chat.message", "message": {"text": "probe"}})
    received = await asyncio.wait_for(layer.receive(channel), 5)
    await layer.group_discard("chat_room.acl-probe", channel)
    await presence.touch("acl-probe", "probe-user")
    print(type(layer).__name__, received["message"]["text"], await presence.members("acl-probe"))

asyncio.run(main())
"""


def test_django_redis_acl_user_runs_channels_redis_and_nothing_else(hosts, manifest, host_by_name, credentials):
    # The app's real code (channels_redis group_add/group_send/receive: EVAL, BZPOPMIN, ZADD...;
    # the presence sorted set) against the real Redis, as the app's ACL user from the env file.
    django = hosts["django"][0]
    out = django.check_output(f"chat-manage shell -c '{CHANNELS_PROBE}'")
    assert out.strip().splitlines()[-1] == "RedisChannelLayer probe ['probe-user']"
    server = manifest.redis.servers[0]
    redis = host_by_name[server.host]
    cli = (f"REDISCLI_AUTH={credentials('redis_django_password')} {manifest.redis.files['cli']} --no-auth-warning "
           f"-h {server.address} -p {server.port} --user django")
    assert redis.check_output(f"{cli} ping") == "PONG"
    assert "NOPERM" in redis.run(f"{cli} get centrifugo.acl-test").stdout
    assert "NOPERM" in redis.run(f"{cli} flushall").stdout
    assert "NOPERM" in redis.run(f"{cli} publish centrifugo.client.x y").stdout


@pytest.mark.parametrize("tier,writable", [
    ("centrifugo", "/var/lib/centrifugo"),
    ("gunicorn", "/srv/chat/data"),
    ("daphne", "/srv/chat/data"),
])
def test_units_are_sandboxed(tier_units, host_by_name, tier, writable):
    units = tier_units(tier)
    assert units, f"the manifest lists no {tier} process"
    for name, unit in units:
        host = host_by_name[name]
        props = host.service(unit).systemd_properties
        assert props["User"] not in ("", "root")
        assert props["NoNewPrivileges"] == "yes"
        assert props["ProtectSystem"] == "strict"
        assert props["ProtectHome"] == "yes"
        assert props["PrivateTmp"] == "yes"
        assert writable in props["ReadWritePaths"]
        # An empty bounding set: the service can never regain a capability.
        assert host.check_output(f"systemctl show -p CapabilityBoundingSet --value {unit}") == ""


#: The highest exposure systemd-analyze security may give a unit the roles write or extend (0 safe, 10 unsafe).
EXPOSURE_LIMIT = 5.0


def exposure(host, unit: str) -> float:
    """systemd-analyze security's overall exposure level of ``unit`` on ``host`` (0.0 to 10.0)."""
    out = host.check_output(f"systemd-analyze security --no-pager {unit}")
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
    assert match, f"no exposure level in systemd-analyze's output for {unit}: {out[-300:]}"
    return float(match.group(1))


def listed_units(host, pattern: str) -> list[str]:
    """The loaded units of ``host`` whose name matches the glob ``pattern``."""
    out = host.check_output(f"systemctl list-units --all --plain --no-legend '{pattern}'")
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def test_units_the_roles_write_or_extend_score_at_most_5(manifest, host_by_name, tier_units):
    # Ours: Centrifugo's instances and watchdogs, gunicorn, daphne, the app's metrics server, nginx (Debian's
    # unit with the role's sandboxing drop-in). Debian's own Redis, Sentinel and PostgreSQL units are reported.
    ours = [*tier_units("centrifugo"), *tier_units("gunicorn"), *tier_units("daphne"), *tier_units("nginx")]
    for name in manifest.hosts_in("centrifugo"):
        ours += [(name, unit) for unit in listed_units(host_by_name[name], "centrifugo-watchdog@*")]
    if manifest["monitoring"]["enabled"]:
        ours += [(name, "chat-metrics") for name in manifest.hosts_in("django")]
    theirs = [*tier_units("redis"), *[(s.host, manifest.redis.files["sentinel_unit"]) for s in manifest.redis.sentinels]]
    theirs += [(name, unit) for name in manifest.hosts_in("postgresql")
               for unit in listed_units(host_by_name[name], "postgresql@*")]
    scores = {f"{name} {unit}": exposure(host_by_name[name], unit) for name, unit in ours}
    print("\nsystemd-analyze security, units the roles write or extend:", scores)
    print("Debian's units (reported):", {f"{name} {unit}": exposure(host_by_name[name], unit) for name, unit in theirs})
    assert any(key.split()[1].startswith("centrifugo-watchdog@") for key in scores), "no watchdog unit found"
    too_exposed = {unit: score for unit, score in scores.items() if score > EXPOSURE_LIMIT}
    assert not too_exposed, f"exposure above {EXPOSURE_LIMIT}: {too_exposed}"


def test_no_secret_in_journals_or_world_readable_files(hosts):
    secrets = list(stack_secrets().values())
    pattern = " ".join(f"-e {secret}" for secret in secrets)
    for group_hosts in hosts.values():
        for host in group_hosts:
            journal = host.run(f"journalctl --no-pager -o cat | grep -c -F {pattern}")
            assert journal.stdout.strip() == "0", f"a secret is in the journal of {host.backend.hostname}"
            leaked = host.run(
                "find /etc /srv /var/lib /var/log /usr/local /tmp -xdev -type f -perm -o=r -size -2M "
                f"-exec grep -l -F {pattern} {{}} + 2>/dev/null")
            assert leaked.stdout.strip() == "", f"world-readable files hold a secret: {leaked.stdout}"


def test_failed_config_check_keeps_the_old_config_live(manifest, host_by_name):
    instance = manifest.centrifugo[0]
    node = host_by_name[instance.host]
    before = node.file("/etc/centrifugo/config.json").sha256sum
    result = run_playbook("site.yml", "--tags", "centrifugo_configure",
                          "-e", '{"centrifugo_config_extra": {"bogus_key": 1}}')
    output = result.output
    assert result.returncode != 0
    assert "unknown keys in config: bogus_key" in output
    assert node.file("/etc/centrifugo/config.json").sha256sum == before
    assert node.service(instance.unit).is_running
    assert requests.get(instance.health_url, timeout=5).status_code == 200


def test_request_body_size_is_limited(site_url, ca_file):
    response = requests.post(f"{site_url}/accounts/login/", data=b"x" * (2 * 1024 * 1024),
                             verify=ca_file, timeout=10)
    assert response.status_code == 413


def test_connection_rate_is_limited_per_address(site_url, ca_file):
    # 100 plain GETs at Centrifugo's location as fast as one client can send them: the first ones
    # reach Centrifugo (which answers non-WebSocket requests itself), the rest past the burst get 429.
    # Runs last: it uses up this address's burst for a second or two.
    session = requests.Session()
    session.trust_env = False
    statuses = [session.get(f"{site_url}/connection/websocket", verify=ca_file, timeout=5).status_code
                for _ in range(100)]
    assert statuses[0] != 429
    assert statuses.count(429) > 0, statuses


def login_post(site_url: str, ca_file: str, username: str, password: str) -> requests.Response:
    """One login through the form as a browser does; the POST's response, whatever it is."""
    return login_attempt(site_url, username, password, verify=ca_file)[1]


def test_failed_logins_lock_the_username_out_until_the_cool_off(hosts, site_url, ca_file):
    # Its own user: the other tests log in as alice, bob, carol and admin from this address, which the local
    # inventory counts per username only (stack_login_limit_exempt), so only this user is locked.
    django = hosts["django"][0]
    username, password = f"lockout-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
    django.check_output(f"printf '%s\\n' {password} | chat-manage ensure_user {username} --password-stdin")
    limit = int(django.check_output("sed -n 's/^DJANGO_LOGIN_FAILURE_LIMIT=//p' /etc/chat/chat.env"))
    cooloff = int(django.check_output("sed -n 's/^DJANGO_LOGIN_COOLOFF_SECONDS=//p' /etc/chat/chat.env"))
    statuses = [login_post(site_url, ca_file, username, "not-the-password").status_code for _ in range(20)]
    # The form again with its error until the limit, then the lockout page: a clear 429, never a 500.
    assert statuses == [200] * (limit - 1) + [429] * (21 - limit), statuses
    locked = login_post(site_url, ca_file, username, password)
    assert locked.status_code == 429 and 'id="login-locked"' in locked.text
    assert "Content-Security-Policy" in locked.headers
    time.sleep(cooloff + 1)
    assert login_post(site_url, ca_file, username, password).status_code == 302


def test_login_posts_from_one_address_are_throttled_by_nginx(manifest, host_by_name):
    # From a test host, an address no exemption covers: 25 POSTs in a row to the login form (no CSRF token:
    # Django answers 403 to those nginx lets through; nginx's 429s are the ones counted).
    nginx = manifest.nginx[0]
    source = host_by_name[manifest.hosts_in("centrifugo")[0]]
    script = ("import ssl, urllib.request, urllib.error\n"
              "ctx = ssl._create_unverified_context()\n"
              "codes, last = [], None\n"
              "for _ in range(25):\n"
              f"    req = urllib.request.Request('https://{nginx.address}:{nginx.https_port}/accounts/login/', data=b'x=1')\n"
              "    try:\n"
              "        codes.append(urllib.request.urlopen(req, context=ctx, timeout=5).status)\n"
              "    except urllib.error.HTTPError as exc:\n"
              "        codes.append(exc.code)\n"
              "        if exc.code == 429:\n"
              "            last = exc.read().decode()\n"
              "print(codes.count(429), codes.count(403), 'login-throttled' in (last or ''))\n")
    throttled, _refused, page = source.check_output(f"python3 -c {shlex.quote(script)}").split()
    assert int(throttled) >= 10, f"nginx throttled {throttled} of 25 login POSTs from one address"
    assert page == "True", "the 429 is not nginx's login page"


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/admin/login/", "/rooms/lobby/"])
def test_every_html_page_carries_the_content_security_policy(site_url, ca_file, login, manifest, path):
    session = login("alice")
    response = session.get(f"{site_url}{path}", timeout=10)
    assert response.headers.get("Content-Type", "").startswith("text/html")
    policy = response.headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "connect-src 'self' " + site_url in policy + " ", policy
    # l4 mode: Centrifugo's WebSocket is another origin (the l4 listener's port), which 'self' does not cover.
    for origin in manifest["centrifugo_public"]["websocket_origins"]:
        assert f" {origin}" in policy, f"{origin} missing from {policy}"
