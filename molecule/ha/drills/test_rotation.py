"""The secret rotation drill, under the same load (drills/load.py): ``playbooks/rotate_secrets.yml -e
rotate_secrets=all`` (every Redis, Sentinel, Centrifugo, Django and PostgreSQL secret) while clients receive and a
post goes through Django every 100 ms.

Asserted: the run succeeds and every secret has a new value; every client gets every committed message (0 lost,
none twice) and no post is refused; Django never gave up a publish to Centrifugo; a browser session logged in
before the rotation still opens a login-only page after it (SECRET_KEY_FALLBACKS) and gets a connection token
signed with the new HMAC key; the Redis servers and the sentinels refuse the old passwords and accept the new ones;
the app moved to the other PostgreSQL login role, which logs in with the new password, while the role it left
cannot log in; no old or new secret appears in the run's output or in any host's journal of the run.
Reported: each play's duration (the rotation timeline), the 401 retries of Django's API calls.
Runs before the upgrade drill (file order), which reads the new API key.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import aiohttp
import jwt
import redis

from rtclient import auth
from rtclient.hosts import exec_in
from rtclient.playbook import TIMELINE_ENV, play_timeline, run_playbook

from .support import report, run, wait_until

#: Credentials files the rotation rewrites: the catalog of playbooks/rotate_secrets.yml (variable -> file).
ROTATED_FILES = {
    "redis_requirepass": "redis_requirepass",
    "centrifugo_redis_password": "redis_centrifugo_password",
    "django_redis_password": "redis_django_password",
    "redis_replication_password": "redis_replication_password",
    "redis_sentinel_auth_password": "redis_sentinel_auth_password",
    "redis_exporter_password": "redis_exporter_password",
    "redis_sentinel_password": "redis_sentinel_password",
    "centrifugo_http_api_key": "centrifugo_http_api_key",
    "centrifugo_client_token_hmac_secret_key": "centrifugo_token_key",
    "centrifugo_admin_password": "centrifugo_admin_password",
    "centrifugo_admin_secret": "centrifugo_admin_secret",
    "django_secret_key": "django_secret_key",
    "postgresql_app_password": "postgresql_app_password",
    "postgresql_outbox_password": "postgresql_outbox_password",
}
#: Redis ACL users of the servers and the variables of their passwords (the roles' and
#: inventories/local/group_vars/all/redis.yml's user names).
REDIS_USERS = {"default": "redis_requirepass", "centrifugo": "centrifugo_redis_password",
               "django": "django_redis_password", "replica": "redis_replication_password",
               "sentinel": "redis_sentinel_auth_password", "exporter": "redis_exporter_password"}
#: The app's virtualenv on the Django hosts (the django role's django_venv).
DJANGO_PYTHON = "/srv/chat/venv/bin/python"
#: Log in to PostgreSQL from a Django host (the only hosts pg_hba.conf lets the app's roles in from) as
#: argv[1] at argv[2]:argv[3], the password on standard input; prints "ok" or the server's refusal.
PG_LOGIN = """
import sys, psycopg
try:
    psycopg.connect(host=sys.argv[2], port=int(sys.argv[3]), dbname="chat", user=sys.argv[1],
                    password=sys.stdin.read().strip(), sslmode="require", connect_timeout=5).close()
    print("ok")
except psycopg.OperationalError as exc:
    print("refused:", str(exc).splitlines()[0][-80:])
"""


def authenticates(server, user: str, password: str) -> bool:
    """Whether the Redis ``server`` (manifest endpoint) accepts ``user``/``password`` (AUTH, then PING)."""
    client = redis.Redis(host=server.address, port=server.port, username=user, password=password, socket_timeout=3)
    try:
        return bool(client.ping())
    except redis.AuthenticationError:
        return False
    finally:
        client.close()


def sentinel_authenticates(sentinel, password: str) -> bool:
    """Whether the sentinel (manifest endpoint) accepts ``password`` (AUTH, then PING)."""
    return authenticates(sentinel, "default", password)


def sentinel_quorum(sentinel, password: str, master_name: str) -> str:
    """The sentinel's answer to SENTINEL CKQUORUM (``OK ...`` when it reaches a quorum of the other sentinels,
    which needs each to log in to the others with its sentinel-pass), or the error's text."""
    client = redis.Redis(host=sentinel.address, port=sentinel.port, password=password, socket_timeout=3,
                         decode_responses=True)
    try:
        return client.execute_command("SENTINEL", "CKQUORUM", master_name)
    except redis.ResponseError as exc:
        return str(exc)
    finally:
        client.close()


def pg_login(manifest, user: str, password: str) -> str:
    """"ok", or PostgreSQL's refusal, for ``user``/``password`` from the first Django host."""
    server = manifest.postgresql[0]
    return exec_in(manifest.hosts_in("django")[0], [DJANGO_PYTHON, "-c", PG_LOGIN, user, server.address,
                                                     str(server.port)], input=password).stdout.strip()


def django_database_user(host: str) -> str:
    """The PostgreSQL role the Django host logs in as now (DATABASE_URL of its environment file, /etc/chat/chat.env)."""
    for line in exec_in(host, ["cat", "/etc/chat/chat.env"]).stdout.splitlines():
        if line.startswith("DATABASE_URL="):
            return urlsplit(line.partition("=")[2]).username or ""
    raise AssertionError(f"no DATABASE_URL in {host}'s /etc/chat/chat.env")


def config_files(host: str, directory: str) -> str:
    """Every file under ``directory`` on ``host`` (Redis's or Sentinel's config directory), concatenated."""
    return exec_in(host, ["find", directory, "-type", "f", "-exec", "cat", "{}", "+"]).stdout


def journal_since(host: str, since: float) -> str:
    """The host's journal since ``since`` (epoch seconds), messages only."""
    return exec_in(host, ["journalctl", "--no-pager", "-o", "cat", "--since", f"@{int(since)}"], timeout=120).stdout


async def api_status(api_url: str, key: str) -> int:
    """The HTTP status of Centrifugo's ``info`` API call with ``key`` (200, or 401 for a key it refuses)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        async with session.post(f"{api_url}/info", json={}, headers={"X-API-Key": key}) as response:
            return response.status


def test_rotate_every_secret_under_load(loop, load, manifest, nodes, site_url, figures):
    old = {name: auth.read_credential(file) for name, file in ROTATED_FILES.items()}
    login_before = django_database_user(manifest.hosts_in("django")[0])
    assert pg_login(manifest, login_before, old["postgresql_app_password"]) == "ok"
    ca_file = auth.ca_file()
    browser = auth.django_login(site_url, "bob", auth.read_credential("user_bob"), verify=ca_file)
    window = run(loop, load.start_window())
    run(loop, asyncio.sleep(2.0))
    started, started_mono = time.time(), time.monotonic()

    # In a thread: the load's clients and posts run on this loop meanwhile.
    rotation = run(loop, asyncio.to_thread(run_playbook, "rotate_secrets.yml", "-e", "rotate_secrets=all",
                                           timeout=1200, env=TIMELINE_ENV))
    assert rotation.returncode == 0, rotation.tail()
    run(loop, load.wait_all_subscribed(60))
    run(loop, asyncio.sleep(3.0))
    run(loop, load.stop_publishing(drain=15.0))
    tally = run(loop, window.tally())
    new = {name: auth.read_credential(file) for name, file in ROTATED_FILES.items()}

    journals = {host: journal_since(host, started) for host in manifest.hosts}
    # Redis and Sentinel log to files of their own (Debian's packages), not to the journal.
    names = manifest.redis.names
    logs = {f"{server.host}:{names['server']['log']}": exec_in(server.host, ["cat", names["server"]["log"]]).stdout
            for server in manifest.redis.servers}
    logs.update({f"{item.host}:{names['sentinel']['sentinel_log']}":
                 exec_in(item.host, ["cat", names["sentinel"]["sentinel_log"]]).stdout for item in manifest.redis.sentinels})
    django_journal = "\n".join(journals[host] for host in manifest.hosts_in("django"))
    outages = load.outages(started_mono)
    report(figures, "rotate_secrets", seconds=round(rotation.seconds, 1), timeline=play_timeline(rotation.output),
           changed=rotation.changed(), api_key_retries=django_journal.count("refused API key"),
           clients_moved=len(load.resubscribe_times(started_mono)), resubscriptions=len(outages),
           longest_resubscribe_s=round(max(outages, default=0), 2), **tally)

    assert all(new[name] != old[name] for name in ROTATED_FILES), "a secret kept its value"
    assert tally["lost"] == 0, f"committed messages lost by clients: {tally}"
    assert tally["duplicates"] == 0, f"duplicated messages: {tally}"
    assert not tally["refused"], f"posts refused during the rotation: {tally['refused']}"
    assert "failed on every attempt" not in django_journal, "Django gave up a publish to Centrifugo"
    # Step 3 restarted every instance (rolling_upgrade.yml, one at a time): its clients moved to the others,
    # and every node now answers the API with the new key only.
    assert load.resubscribe_times(started_mono), "no client was moved: the Centrifugo instances did not restart"
    for node in nodes:
        assert run(loop, api_status(node.api_url, new["centrifugo_http_api_key"])) == 200, node.name
        assert run(loop, api_status(node.api_url, old["centrifugo_http_api_key"])) == 401, node.name

    # The session of before the rotation still opens a page for logged-in users only (SECRET_KEY_FALLBACKS),
    # and gets a connection token signed with the new HMAC key.
    page = browser.get(f"{site_url}/", verify=ca_file, timeout=10, allow_redirects=False)
    assert page.status_code == 200, f"the session of before the rotation was logged out: {page.status_code}"
    token = browser.get(f"{site_url}/chat/token/", verify=ca_file, timeout=10, allow_redirects=False)
    assert token.status_code == 200, f"no connection token for the session of before the rotation: {token.status_code}"
    claims = jwt.decode(token.json()["token"], new["centrifugo_client_token_hmac_secret_key"], algorithms=["HS256"],
                        options={"verify_aud": False})
    assert claims["sub"], claims

    for server in manifest.redis.servers:
        for user, name in REDIS_USERS.items():
            assert not authenticates(server, user, old[name]), f"{server.address} still accepts {user}'s old password"
            assert authenticates(server, user, new[name]), f"{server.address} refuses {user}'s new password"
    for sentinel in manifest.redis.sentinels:
        assert not sentinel_authenticates(sentinel, old["redis_sentinel_password"]), f"{sentinel.address}: old password"
        assert sentinel_authenticates(sentinel, new["redis_sentinel_password"]), f"{sentinel.address}: new password"
    # Nothing restarted Redis or the sentinels: what they start from next time must agree with what they run.
    # No old value is left in their config files (Sentinel has no CONFIG SET: a requirepass line would keep it)...
    stale = [(host, name) for host, directory in
             [(server.host, names["server"]["conf_dir"]) for server in manifest.redis.servers]
             + [(item.host, names["sentinel"]["conf_dir"]) for item in manifest.redis.sentinels]
             for text in [config_files(host, directory)] for name in ROTATED_FILES if old[name] in text]
    assert not stale, f"old secrets left in Redis's or Sentinel's config files: {sorted(set(stale))}"
    # ...and a sentinel restarted on its runtime file accepts the new password only.
    sentinel = manifest.redis.sentinels[0]
    exec_in(sentinel.host, ["systemctl", "restart", names["sentinel"]["sentinel_service"]])
    wait_until(lambda: sentinel_authenticates(sentinel, new["redis_sentinel_password"]), 15, interval=0.2,
               what=f"the restarted sentinel on {sentinel.host} to accept the new password", loop=loop)
    assert not sentinel_authenticates(sentinel, old["redis_sentinel_password"]), f"restarted {sentinel.address}: old"
    # The sentinels still reach each other (they log in to one another with the new sentinel-pass).
    master_name = manifest.redis.sentinel_master_name
    wait_until(lambda: all(sentinel_quorum(item, new["redis_sentinel_password"], master_name).startswith("OK")
                           for item in manifest.redis.sentinels), 30, interval=0.5,
               what="every sentinel to pass SENTINEL CKQUORUM after the rotation", loop=loop)

    # The app moved to the other login role with the new password; the one it left cannot log in at all.
    login_after = auth.read_credential("postgresql_app_login_user")
    assert login_after != login_before, f"the app still logs in as {login_before}"
    assert {django_database_user(host) for host in manifest.hosts_in("django")} == {login_after}
    assert pg_login(manifest, login_after, new["postgresql_app_password"]) == "ok"
    assert pg_login(manifest, login_before, old["postgresql_app_password"]).startswith("refused")

    leaked = [(where, name) for where, text in [("the run's output", rotation.output), *journals.items(), *logs.items()]
              for name in ROTATED_FILES for value in (old[name], new[name]) if value in text]
    assert not leaked, f"secrets printed: {sorted(set(leaked))}"
