"""The secret rotation drill, under the same load (drills/load.py): ``playbooks/rotate_secrets.yml -e
rotate_secrets=all`` while clients receive and a post goes through Django every 100 ms.

Asserted: the run succeeds; every client gets every committed message (0 lost, none twice) and no post is
refused; Django never gave up a publish to Centrifugo; a browser session logged in before the rotation still
opens a login-only page after it (SECRET_KEY_FALLBACKS); the old Redis passwords no longer authenticate and
the new ones do; no old or new secret appears in the run's output or in the hosts' journals of the run.
Reported: each step's duration (the rotation timeline), the 401 retries of Django's API calls.
Runs before the upgrade drill (file order), which reads the new API key.
"""

from __future__ import annotations

import asyncio
import time

import jwt
import redis

from rtclient import auth
from rtclient.hosts import exec_in
from rtclient.playbook import TIMELINE_ENV, play_timeline, run_playbook

from .support import report, run

#: Credentials files the rotation rewrites: the catalog of playbooks/rotate_secrets.yml (variable -> file).
ROTATED_FILES = {
    "redis_requirepass": "redis_requirepass",
    "centrifugo_redis_password": "redis_centrifugo_password",
    "django_redis_password": "redis_django_password",
    "centrifugo_http_api_key": "centrifugo_http_api_key",
    "centrifugo_client_token_hmac_secret_key": "centrifugo_token_key",
    "centrifugo_admin_password": "centrifugo_admin_password",
    "centrifugo_admin_secret": "centrifugo_admin_secret",
    "django_secret_key": "django_secret_key",
}
#: Redis ACL users and the files of their passwords (inventories/local/group_vars/all/redis.yml names them).
REDIS_USERS = {"default": "redis_requirepass", "centrifugo": "redis_centrifugo_password",
               "django": "redis_django_password"}


def authenticates(server, user: str, password: str) -> bool:
    """Whether the Redis ``server`` (manifest endpoint) accepts ``user``/``password`` (AUTH, then PING)."""
    client = redis.Redis(host=server.address, port=server.port, username=user, password=password, socket_timeout=3)
    try:
        return bool(client.ping())
    except redis.AuthenticationError:
        return False
    finally:
        client.close()


def journal_since(host: str, since: float) -> str:
    """The host's journal since ``since`` (epoch seconds), messages only."""
    return exec_in(host, ["journalctl", "--no-pager", "-o", "cat", "--since", f"@{int(since)}"], timeout=120).stdout


def test_rotate_every_secret_under_load(loop, load, manifest, site_url, figures):
    old = {name: auth.read_credential(file) for name, file in ROTATED_FILES.items()}
    ca_file = auth.ca_file()
    browser = auth.django_login(site_url, "bob", auth.read_credential("user_bob"), verify=ca_file)
    window = run(loop, load.start_window())
    run(loop, asyncio.sleep(2.0))
    started = time.time()

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
    django_journal = "\n".join(journals[host] for host in manifest.hosts_in("django"))
    report(figures, "rotate_secrets", seconds=round(rotation.seconds, 1), timeline=play_timeline(rotation.output),
           changed=rotation.changed(), api_key_retries=django_journal.count("refused API key"), **tally)

    assert all(new[name] != old[name] for name in ROTATED_FILES), "a secret kept its value"
    assert tally["lost"] == 0, f"committed messages lost by clients: {tally}"
    assert tally["duplicates"] == 0, f"duplicated messages: {tally}"
    assert not tally["refused"], f"posts refused during the rotation: {tally['refused']}"
    assert "failed on every attempt" not in django_journal, "Django gave up a publish to Centrifugo"

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
        for user, file in REDIS_USERS.items():
            name = next(key for key, value in ROTATED_FILES.items() if value == file)
            assert not authenticates(server, user, old[name]), f"{server.address} still accepts {user}'s old password"
            assert authenticates(server, user, new[name]), f"{server.address} refuses {user}'s new password"

    leaked = [(where, name) for where, text in [("the run's output", rotation.output), *journals.items()]
              for name in ROTATED_FILES for value in (old[name], new[name]) if value in text]
    assert not leaked, f"secrets printed: {sorted(set(leaked))}"
