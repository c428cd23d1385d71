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
import redis.sentinel
import requests

from tests import rtclient

CHANNEL = "rooms:lobby"


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def instances(groups, address):
    """(host name, address, client port, internal port, node name) of every Centrifugo instance, from
    the instances' environment files on the hosts."""
    return [(name, address[name], int(env["CENTRIFUGO_HTTP_SERVER_PORT"]),
             int(env["CENTRIFUGO_HTTP_SERVER_INTERNAL_PORT"]), env["CENTRIFUGO_NODE_NAME"])
            for name in groups["centrifugo"] for env in rtclient.centrifugo_instances(name)]


def test_three_nodes_two_on_one_host(instances, hosts, groups):
    assert len(instances) == 3
    per_host = {name: [i for i in instances if i[0] == name] for name in groups["centrifugo"]}
    assert sorted(len(v) for v in per_host.values()) == [1, 2]
    for name, host in zip(groups["centrifugo"], hosts["centrifugo"]):
        for _, _, port, _, _ in per_host[name]:
            unit = host.service(f"centrifugo@{port}")
            assert unit.is_running and unit.is_enabled
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


def test_message_crosses_instances_and_hosts(instances, login, ws_url, client_factory):
    """A message published by a client of the second instance of the two-instance host reaches a
    client of the first instance of that host, one of the other host, and one through nginx."""
    alice, bob = login("alice"), login("bob")
    by_host = {}
    for item in instances:
        by_host.setdefault(item[0], []).append(item)
    double = next(v for v in by_host.values() if len(v) == 2)
    single = next(v for v in by_host.values() if len(v) == 1)[0]
    urls = [f"ws://{ip}:{port}{rtclient.WEBSOCKET_PATH}" for _, ip, port, _, _ in (double[1], double[0], single)]
    text = f"cross-instance {uuid.uuid4()}"

    async def scenario():
        pub, _ = client_factory(urls[0], rtclient.cookie_header(alice))
        receivers = [client_factory(url, rtclient.cookie_header(bob))[0] for url in urls[1:] + [ws_url]]
        try:
            pub_sub, _ = await rtclient.subscribe(pub, CHANNEL)
            inboxes = [(await rtclient.subscribe(client, CHANNEL))[1] for client in receivers]
            await pub_sub.publish({"text": text})
            return [await inbox.wait_for(lambda d: d.get("text") == text, timeout=5) for inbox in inboxes]
        finally:
            for client in [pub, *receivers]:
                await client.disconnect()

    got = run(scenario())
    assert len(got) == 3 and all(item["user"] == "alice" for item in got)


def test_sentinels_agree_on_one_master_with_two_replicas(groups, address, credentials):
    password = credentials("redis_sentinel_password")
    masters = set()
    for name in groups["redis"]:
        sentinel = redis.Redis(host=address[name], port=26379, password=password, socket_timeout=3,
                               decode_responses=True)
        master = sentinel.sentinel_master("rtstack")
        masters.add((master["ip"], master["port"]))
        assert master["num-slaves"] == 2 and master["num-other-sentinels"] == 2, master
        assert "s_down" not in master["flags"] and "o_down" not in master["flags"], master
    assert len(masters) == 1
    ip, _ = masters.pop()
    assert ip in {address[name] for name in groups["redis"]}


def test_django_hosts_share_the_postgresql_database(groups, hosts, address, login):
    """Both Django hosts use PostgreSQL, and a session made through nginx is valid on each."""
    for host in hosts["django"]:
        vendor = host.check_output("chat-manage shell -c 'from django.db import connection; print(connection.vendor)'")
        assert vendor.strip().splitlines()[-1] == "postgresql"  # the shell first lists its auto-imports
    session = login("alice")
    for name in groups["django"]:
        page = requests.get(f"http://{address[name]}:8001/", cookies=session.cookies.get_dict(),
                            headers={"Host": "127.0.0.1"}, timeout=10, allow_redirects=False)
        assert page.status_code == 200, (name, page.status_code)


def test_channels_layer_over_sentinel(groups, hosts, address, login, site_url, ca_file):
    """A Channels client on daphne of Django host 1 gets a message published by the management
    command on Django host 2: channels_redis found the master through the sentinels."""
    session = login("alice")
    text = f"channels over sentinel {uuid.uuid4()}"
    first = address[groups["django"][0]]

    async def scenario():
        url = f"ws://{first}:8101{rtclient.CHANNELS_PATH.format(room='lobby')}"
        async with rtclient.ChannelsClient(url, cookie=rtclient.cookie_header(session), origin=site_url) as client:
            await asyncio.sleep(0.5)
            await asyncio.to_thread(
                hosts["django"][1].check_output,
                f"chat-manage publish rooms:lobby {shlex.quote(json.dumps({'text': text, 'user': 'ops'}))}")
            return await client.wait_message(text, timeout=10)

    assert run(scenario())["text"] == text

