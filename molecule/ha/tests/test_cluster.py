"""The scaled-out stack as deployed (checked after converge, and again after the failure drills):
three Centrifugo nodes of which two are instances on one host, all in nginx's upstream and in one
cluster over Redis Sentinel; two Django hosts on one PostgreSQL database; Channels over Sentinel.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import uuid

import pytest
import redis
import requests

from rtclient.auth import cookie_header
from rtclient.channels import ChannelsClient, channels_url

CHANNEL = "rooms:lobby"


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def instances(manifest):
    """(host name, address, client port, internal port, node name) of every Centrifugo instance,
    from the manifest (test_three_nodes_two_on_one_host checks it against the hosts)."""
    return [(node.host, node.address, node.port, node.internal_port, node.name) for node in manifest.centrifugo]


def test_three_nodes_two_on_one_host(instances, hosts, groups):
    assert len(instances) == 3
    per_host = {name: [i for i in instances if i[0] == name] for name in groups["centrifugo"]}
    assert sorted(len(v) for v in per_host.values()) == [1, 2]
    for name, host in zip(groups["centrifugo"], hosts["centrifugo"]):
        for _, _, port, internal_port, node_name in per_host[name]:
            unit = host.service(f"centrifugo@{port}")
            assert unit.is_running and unit.is_enabled
            # The instance's environment file on the host says what the manifest says.
            env = host.file(f"/etc/centrifugo/instances/{port}.env").content_string
            assert f"CENTRIFUGO_NODE_NAME={node_name}\n" in env
            assert f"CENTRIFUGO_HTTP_SERVER_INTERNAL_PORT={internal_port}\n" in env
        assert not host.file("/etc/systemd/system/centrifugo.service").exists


def test_every_instance_is_healthy_and_in_one_cluster(instances, credentials):
    key = credentials("centrifugo_http_api_key")
    for _, ip, _, internal_port, _ in instances:
        assert requests.get(f"http://{ip}:{internal_port}/health", timeout=5).status_code == 200
    _, ip, _, internal_port, _ = instances[0]
    info = requests.post(f"http://{ip}:{internal_port}/api/info", headers={"X-API-Key": key}, json={},
                         timeout=5).json()
    assert {node["name"] for node in info["result"]["nodes"]} == {i[4] for i in instances}


def test_nginx_upstream_lists_every_instance(instances, hosts):
    site = hosts["nginx"][0].file("/etc/nginx/sites-available/chat.conf").content_string
    upstream = site.split("upstream centrifugo {", 1)[1].split("}", 1)[0]
    servers = sorted(line.split()[1] for line in upstream.splitlines() if line.strip().startswith("server "))
    assert servers == sorted(f"{ip}:{port}" for _, ip, port, _, _ in instances)
    assert " down;" not in upstream


def test_message_crosses_instances_and_hosts(instances, manifest, login, ws_url, client_factory):
    """A message published by a client of the second instance of the two-instance host reaches a
    client of the first instance of that host, one of the other host, and one through nginx."""
    alice, bob = login("alice"), login("bob")
    by_host = {}
    for item in instances:
        by_host.setdefault(item[0], []).append(item)
    double = next(v for v in by_host.values() if len(v) == 2)
    single = next(v for v in by_host.values() if len(v) == 1)[0]
    client_urls = {(node.host, node.port): node.client_url for node in manifest.centrifugo}
    urls = [client_urls[(name, port)] for name, _, port, _, _ in (double[1], double[0], single)]
    text = f"cross-instance {uuid.uuid4()}"

    async def scenario():
        pub = client_factory(urls[0], cookie_header(alice))
        receivers = [client_factory(url, cookie_header(bob)) for url in urls[1:] + [ws_url]]
        try:
            pub_sub = await pub.subscribe(CHANNEL)
            inboxes = [await client.subscribe(CHANNEL) for client in receivers]
            await pub_sub.publish({"text": text})
            return [await inbox.wait_for(lambda d: d.get("text") == text, timeout=5) for inbox in inboxes]
        finally:
            for client in [pub, *receivers]:
                await client.close()

    got = run(scenario())
    assert len(got) == 3 and all(item["user"] == "alice" for item in got)


def test_sentinels_agree_on_one_master_with_two_replicas(manifest, groups, address, credentials):
    password = credentials("redis_sentinel_password")
    masters = set()
    sentinels = manifest.redis.sentinels
    assert manifest.redis_mode == "sentinel" and len(sentinels) == len(groups["redis"]) == 3
    for item in sentinels:
        sentinel = redis.Redis(host=item.address, port=item.port, password=password, socket_timeout=3,
                               decode_responses=True)
        master = sentinel.sentinel_master(manifest.redis.sentinel_master_name)
        masters.add((master["ip"], master["port"]))
        assert master["num-slaves"] == 2 and master["num-other-sentinels"] == 2, master
        assert "s_down" not in master["flags"] and "o_down" not in master["flags"], master
    assert len(masters) == 1
    ip, _ = masters.pop()
    assert ip in {address[name] for name in groups["redis"]}


def test_django_hosts_share_the_postgresql_database(manifest, groups, hosts, login):
    """Both Django hosts use PostgreSQL, and a session made through nginx is valid on each."""
    for host in hosts["django"]:
        vendor = host.check_output("chat-manage shell -c 'from django.db import connection; print(connection.vendor)'")
        assert vendor.strip().splitlines()[-1] == "postgresql"  # the shell first lists its auto-imports
    session = login("alice")
    gunicorns = {item.host: item.url for item in manifest.gunicorn}
    assert set(gunicorns) == set(groups["django"]) and len(gunicorns) == 2
    for name, url in gunicorns.items():
        page = requests.get(f"{url}/", cookies=session.cookies.get_dict(),
                            headers={"Host": "127.0.0.1"}, timeout=10, allow_redirects=False)
        assert page.status_code == 200, (name, page.status_code)


def test_channels_layer_over_sentinel(manifest, groups, host_by_name, login, site_url):
    """A Channels client on daphne of Django host 1 gets a message published by the management
    command on Django host 2: channels_redis found the master through the sentinels."""
    session = login("alice")
    text = f"channels over sentinel {uuid.uuid4()}"
    first, second = groups["django"][:2]
    daphne = manifest.daphne_on(first)[0]

    async def scenario():
        url = channels_url(daphne.url, "lobby")
        async with ChannelsClient(url, cookie=cookie_header(session), origin=site_url) as client:
            await asyncio.sleep(0.5)
            await asyncio.to_thread(
                host_by_name[second].check_output,
                f"chat-manage publish rooms:lobby {shlex.quote(json.dumps({'text': text, 'user': 'ops'}))}")
            return await client.wait_message(text, timeout=10)

    assert run(scenario())["text"] == text



def test_the_app_logs_in_through_one_blue_green_login_role(manifest):
    """The app's roles (roles/postgresql README, "Blue/green login roles"): the owner ``chat`` and one of the two
    login roles cannot log in; the other one can, and it is the one every Django host uses (DATABASE_URL); both are
    members of the owner and their sessions start as it, so every table of the app is the owner's. After the
    rotation drill the login role has switched (molecule/ha/drills/test_rotation.py)."""
    from rtclient.hosts import exec_in

    server = manifest.postgresql[0]
    sql = ("SELECT r.rolname, r.rolcanlogin, r.rolpassword IS NOT NULL, coalesce(array_to_string(s.setconfig, ','), ''), "
           "pg_has_role(r.oid, 'chat', 'MEMBER') FROM pg_authid r LEFT JOIN pg_db_role_setting s "
           "ON s.setrole = r.oid AND s.setdatabase = 0 WHERE r.rolname IN ('chat', 'chat_blue', 'chat_green') "
           "ORDER BY 1")
    psql = ["runuser", "-u", "postgres", "--", "psql", "-p", str(server.port), "-XAt", "-d", "chat", "-c"]
    roles = {row.split("|")[0]: row.split("|")[1:] for row in exec_in(server.host, psql + [sql]).stdout.split()}
    users = set()
    for host in manifest.hosts_in("django"):
        env = exec_in(host, ["cat", "/etc/chat/chat.env"]).stdout
        users |= {line.split("://", 1)[1].split(":", 1)[0] for line in env.splitlines() if line.startswith("DATABASE_URL=")}
    assert len(users) == 1, f"the Django hosts log in as different roles: {users}"
    active = users.pop()
    idle = ({"chat_blue", "chat_green"} - {active}).pop()
    assert roles["chat"][:2] == ["f", "f"], f"the owner logs in: {roles['chat']}"
    assert roles[active] == ["t", "t", "role=chat", "t"], f"{active}: {roles[active]}"
    assert roles[idle] == ["f", "f", "role=chat", "t"], f"{idle}: {roles[idle]}"
    owners = exec_in(server.host, psql + ["SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"])
    assert owners.stdout.split() == ["chat"], f"tables of the app owned by {owners.stdout.split()}"
