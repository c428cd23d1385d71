"""Every Centrifugo transport with the official JavaScript SDK (centrifuge-js under Node,
rtclient.node), through nginx over HTTPS and straight to the nodes:

- each of websocket, http_stream and sse is negotiated when asked for, and delivers a message
  posted through Django within 1 s (a buffering proxy would hold it back);
- 9 connections over the three transports, spread by nginx over both nodes (Centrifugo's ``info``
  API counts each node's clients), all receive every message;
- bidirectional emulation without sticky sessions: the stream on node 1's own port, the commands
  (subscribe, pongs) POSTed to node 2's ``/emulation``, which forwards them through Redis;
- ``/emulation`` takes POST only; the unidirectional transports are off by default;
- the idle hold (conftest.idle_hold, running since the session's first test): one connection per
  transport survives 65 s without data, then receives again within 1 s. This module is the last
  of the session, so the hold has run while the other tests did.

Transports: https://centrifugal.dev/docs/transports/overview
"""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from cent import Client, InfoRequest

from rtclient import node

#: Delivery bound through nginx: a message must not wait in a proxy buffer.
DELIVERY_SECONDS = 1.0


@pytest.fixture(scope="module")
def room(login, join_room):
    """A fresh room alice belongs to."""
    name = f"transports-{uuid.uuid4().hex[:8]}"
    join_room(login("alice"), name)
    return name


def received(clients: node.NodeClients, channel: str, message_id: int, timeout: float) -> list[dict]:
    """Waits until every client of ``clients`` got publication ``message_id`` on ``channel``;
    returns those publication events."""
    count = len({e["i"] for e in clients.of("connected")})
    deadline = time.monotonic() + timeout
    while True:
        got = [e for e in clients.publications(channel) if e["data"].get("id") == message_id]
        if len({e["i"] for e in got}) >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


def node_clients_counts(manifest, api_key: str) -> dict[str, int]:
    """Node name -> its client connections, from Centrifugo's ``info`` API (any node answers for all)."""
    result = Client(manifest.centrifugo[0].api_url, api_key, timeout=5).info(InfoRequest())
    return {item.name: item.num_clients for item in result.nodes}


def test_each_transport_is_negotiated_and_nine_connections_on_two_nodes_get_every_message(
        login, post_message, node_clients, room, manifest, credentials):
    bob = login("bob")
    api_key = credentials("centrifugo_http_api_key")
    before = node_clients_counts(manifest, api_key)
    clients = {name: node_clients(bob, names=(name,), channels=[f"rooms:{room}"], count=3) for name in node.TRANSPORTS}
    for name, each in clients.items():
        each.wait_ready(timeout=30)
        assert {e["transport"] for e in each.of("connected")} == {name}, f"asked for {name} only"
    # Each node refreshes its entry of the cluster's node list every few seconds.
    deadline = time.monotonic() + 15
    while True:
        after = node_clients_counts(manifest, api_key)
        grown = {name: after[name] - before.get(name, 0) for name in after}
        if sum(grown.values()) >= 9 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert sum(grown.values()) >= 9 and sum(1 for n in grown.values() if n > 0) >= 2, \
        f"the 9 connections were not spread over two nodes: new clients per node {grown}"

    alice = login("alice")
    for number in range(3):
        sent = time.time()
        message = post_message(alice, room, f"over every transport {number} {uuid.uuid4().hex[:6]}")
        for name, each in clients.items():
            got = received(each, f"rooms:{room}", message["id"], timeout=5)
            assert len({e["i"] for e in got}) == 3, f"{name}: {len(got)} of 3 connections got message {number}"
            late = max(e["recv"] for e in got) - sent
            assert late < DELIVERY_SECONDS + 0.5, f"{name}: delivered {late:.2f} s after the post (buffered?)"
            # The SDK's own clock: publication receipt against the moment the post was sent.
            assert max(e["t"] / 1000 for e in got) - sent < DELIVERY_SECONDS, f"{name}: {late:.2f} s"
    for each in clients.values():
        assert not each.of("disconnected") and each.stats()["reconnects"] == 0


@pytest.mark.parametrize("transport", ["http_stream", "sse"])
def test_emulation_crosses_nodes_without_sticky_sessions(login, post_message, node_clients, manifest, room,
                                                         transport):
    node1 = manifest.centrifugo[0]
    node2 = next(n for n in manifest.centrifugo if n.host != node1.host)
    bob = login("bob")
    # The stream on node 1; subscribe (and every pong) POSTed to node 2, which forwards it.
    clients = node_clients(bob, names=(transport,), base=node1.base_url, emulation_base=node2.base_url,
                           channels=[f"rooms:{room}"])
    clients.wait_ready(timeout=30)
    assert clients.of("connected")[0]["transport"] == transport
    message = post_message(login("alice"), room, f"emulated across nodes {uuid.uuid4().hex[:6]}")
    assert received(clients, f"rooms:{room}", message["id"], timeout=5), \
        f"{transport} stream on {node1.name} with /emulation on {node2.name}: message not delivered"


def test_emulation_takes_post_only_and_unidirectional_transports_are_off(site_url, ca_file):
    assert requests.get(f"{site_url}/emulation", verify=ca_file, timeout=10).status_code == 403
    for path in ("/connection/uni_http_stream", "/connection/uni_sse"):
        answer = requests.post(f"{site_url}{path}", data="{}", verify=ca_file, timeout=10)
        assert answer.status_code == 404, f"{path} answered {answer.status_code}: uni transports are off by default"


def test_idle_hold_of_every_transport_drops_nothing_and_delivers_again(idle_hold, post_message):
    waited = time.monotonic() - idle_hold["ready"]
    if waited < idle_hold["seconds"]:
        time.sleep(idle_hold["seconds"] - waited)
    held = time.monotonic() - idle_hold["ready"]
    for name, clients in idle_hold["clients"].items():
        assert not clients.of("disconnected") and not clients.publications(), \
            f"{name} was not idle or dropped during the hold: {clients.events[-5:]}"
        assert clients.stats()["reconnects"] == 0
    sent = time.time()
    channel = f"rooms:{idle_hold['room']}"
    message = post_message(idle_hold["session"], idle_hold["room"], f"after {held:.0f} s idle")
    for name, clients in idle_hold["clients"].items():
        got = received(clients, channel, message["id"], timeout=5)
        assert got, f"{name}: nothing received after the {held:.0f} s hold"
        assert got[0]["t"] / 1000 - sent < DELIVERY_SECONDS, f"{name}: {got[0]['t'] / 1000 - sent:.2f} s after the hold"
