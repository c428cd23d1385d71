"""The Django Channels path (realtime_backend: both) and the one publish API, with real clients.

- A message sent to one daphne process reaches a client of another daphne process (another
  instance on the host, or another host) and a client through nginx: the group broadcast goes
  through Redis (channels_redis), not through process memory.
- ``publish()`` (the ``publish`` management command on a Django host) reaches a Centrifugo client
  and a Channels client, both through nginx.
- With both backends, a message sent on either path reaches the clients of the other.
- Presence: two connected users are listed, on each path.
- Token auth: a connection JWT from ``/chat/token/`` connects to Centrifugo without a cookie, a
  subscription JWT opens a staff-only room, and ``?token=`` opens the Channels socket; a bad
  token closes it with 4001.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import uuid

import pytest
import websockets

from tests import rtclient

ROOM = "lobby"
CHANNEL = f"rooms:{ROOM}"


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="session")
def channels_url(site_url):
    """The Channels consumer's URL for a room, through nginx."""
    def _url(room: str = ROOM, token: str | None = None) -> str:
        url = site_url.replace("http", "ws", 1) + rtclient.CHANNELS_PATH.format(room=room)
        return f"{url}?token={token}" if token else url
    return _url


@pytest.fixture(scope="session")
def daphne_urls(groups, address, hosts):
    """ws:// URLs of the lobby on every daphne process of every Django host (straight to the
    process, by the ports its systemd instances listen on)."""
    urls = []
    for name, host in zip(groups["django"], hosts["django"]):
        units = host.check_output("systemctl list-units --plain --no-legend 'chat-daphne@*.service'")
        ports = sorted(int(line.split("@")[1].split(".service")[0]) for line in units.splitlines() if line)
        urls += [f"ws://{address[name]}:{port}{rtclient.CHANNELS_PATH.format(room=ROOM)}" for port in ports]
    return urls


@pytest.fixture(scope="session")
def channels_factory(site_url, ca_file):
    """ChannelsClient with the site's origin and CA: channels_factory(url, cookie)."""
    def _make(url: str, cookie: str | None = None, origin: str | None = site_url):
        return rtclient.ChannelsClient(url, cookie=cookie, origin=origin, ca_file=ca_file)
    return _make


def test_every_daphne_instance_runs(daphne_urls):
    # The default inventory: two processes per Django host.
    assert len(daphne_urls) >= 2


def test_channels_message_crosses_daphne_processes_through_redis(login, daphne_urls, channels_url,
                                                                 channels_factory, site_url):
    alice, bob = rtclient.cookie_header(login("alice")), rtclient.cookie_header(login("bob"))
    first, last = daphne_urls[0], daphne_urls[-1]
    text = f"cross-process {uuid.uuid4()}"

    async def scenario():
        async with channels_factory(first, alice) as sender, \
                channels_factory(last, bob) as other_process, \
                channels_factory(channels_url(), bob) as through_nginx:
            await sender.send({"text": text})
            return (await other_process.wait_message(text), await through_nginx.wait_message(text),
                    await sender.wait_message(text))

    got_other, got_nginx, echo = run(scenario())
    assert got_other["user"] == "alice" and isinstance(got_other["id"], int)
    assert got_other == got_nginx == echo
    # Saved like every message: the room page renders it from the database.
    assert text in login("bob").get(f"{site_url}/rooms/{ROOM}/", timeout=10).text


def test_publish_reaches_a_client_of_each_backend(login, hosts, ws_url, channels_url, client_factory,
                                                  channels_factory):
    bob = rtclient.cookie_header(login("bob"))
    text = f"published {uuid.uuid4()}"
    data = json.dumps({"text": text, "user": "operator"})

    async def scenario():
        client, _ = client_factory(ws_url, bob)
        try:
            _, inbox = await rtclient.subscribe(client, CHANNEL)
            async with channels_factory(channels_url(), bob) as channels_client:
                # The operators' entry point to publish(): the management command on a Django host.
                out = await asyncio.to_thread(
                    hosts["django"][0].check_output, f"chat-manage publish {CHANNEL} {shlex.quote(data)}")
                got_channels = await channels_client.wait_message(text)
            got_centrifugo = await inbox.wait_for(lambda d: d.get("text") == text)
            return out, got_centrifugo, got_channels
        finally:
            await client.disconnect()

    out, got_centrifugo, got_channels = run(scenario())
    assert out.strip().endswith("published")
    assert got_centrifugo == got_channels == {"text": text, "user": "operator"}


def test_both_backends_are_one_chat(login, ws_url, channels_url, client_factory, channels_factory):
    alice, bob = rtclient.cookie_header(login("alice")), rtclient.cookie_header(login("bob"))
    from_centrifugo, from_channels = f"via centrifugo {uuid.uuid4()}", f"via channels {uuid.uuid4()}"

    async def scenario():
        client, _ = client_factory(ws_url, alice)
        try:
            sub, inbox = await rtclient.subscribe(client, CHANNEL)
            async with channels_factory(channels_url(), bob) as channels_client:
                await sub.publish({"text": from_centrifugo})
                got_on_channels = await channels_client.wait_message(from_centrifugo)
                await channels_client.send({"text": from_channels})
                got_on_centrifugo = await inbox.wait_for(lambda d: d.get("text") == from_channels)
            return got_on_channels, got_on_centrifugo
        finally:
            await client.disconnect()

    got_on_channels, got_on_centrifugo = run(scenario())
    assert got_on_channels["user"] == "alice"
    assert got_on_centrifugo["user"] == "bob"


def test_presence_lists_two_connected_users_on_each_path(login, ws_url, channels_url, client_factory,
                                                          channels_factory, site_url):
    sessions = {name: login(name) for name in ("alice", "bob")}
    cookies = {name: rtclient.cookie_header(s) for name, s in sessions.items()}

    def presence() -> dict:
        response = sessions["alice"].get(f"{site_url}/rooms/{ROOM}/presence/", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    async def scenario():
        clients = [client_factory(ws_url, cookies[name])[0] for name in ("alice", "bob")]
        try:
            for client in clients:
                await rtclient.subscribe(client, CHANNEL)
            on_centrifugo = await asyncio.to_thread(presence)
        finally:
            for client in clients:
                await client.disconnect()
        async with channels_factory(channels_url(), cookies["alice"]) as a, \
                channels_factory(channels_url(), cookies["bob"]) as b:
            await a.send({"type": "heartbeat"})
            frame = await a.wait_for(lambda f: f.get("type") == "presence")
            on_channels = await asyncio.to_thread(presence)
            del b
        return on_centrifugo, frame, on_channels

    on_centrifugo, frame, on_channels = run(scenario())
    assert {"alice", "bob"} <= set(on_centrifugo["backends"]["centrifugo"])
    assert {"alice", "bob"} <= set(frame["users"])
    assert {"alice", "bob"} <= set(on_channels["backends"]["channels"])
    assert {"alice", "bob"} <= set(on_channels["users"])


def test_connection_token_replaces_the_cookie(login, site_url, ws_url, channels_url, ca_file,
                                              channels_factory):
    token = login("alice").get(f"{site_url}/chat/token/", timeout=10).json()["token"]

    async def scenario():
        # Centrifugo verifies the JWT itself (before, and instead of, the connect proxy): no cookie.
        client, _ = rtclient.make_client(ws_url, None, site_url, ca_file=ca_file, token=token)
        try:
            _, inbox = await rtclient.subscribe(client, CHANNEL)
        finally:
            await client.disconnect()
        # The Channels socket takes the same token in its query string.
        async with channels_factory(channels_url(token=token)) as channels_client:
            await channels_client.send({"type": "heartbeat"})
            frame = await channels_client.wait_for(lambda f: f.get("type") == "presence")
        return inbox, frame

    _, frame = run(scenario())
    assert "alice" in frame["users"]


def test_subscription_token_opens_a_staff_room(login, site_url, ws_url, ca_file):
    admin, alice = login("admin"), login("alice")
    channel = "rooms:staff"
    # Django decides who may have a subscription token: not a regular user.
    refused = alice.get(f"{site_url}/chat/token/subscription/", params={"channel": channel}, timeout=10)
    assert refused.status_code == 403
    connection = admin.get(f"{site_url}/chat/token/", timeout=10).json()["token"]
    subscription = admin.get(f"{site_url}/chat/token/subscription/", params={"channel": channel},
                             timeout=10).json()["token"]

    async def scenario():
        client, _ = rtclient.make_client(ws_url, None, site_url, ca_file=ca_file, token=connection)
        try:
            await client.connect()
            await client.ready(5)
            sub = client.new_subscription(channel, token=subscription)
            await sub.subscribe()
            await sub.ready(5)
            return sub.state
        finally:
            await client.disconnect()

    assert str(run(scenario())).endswith("SUBSCRIBED")


@pytest.mark.parametrize("token", ["not-a-jwt", "expired"])
def test_bad_token_closes_the_channels_socket_with_4001(token, login, site_url, channels_url,
                                                         channels_factory):
    if token == "expired":
        import jwt  # PyJWT, as the app signs them; a real token re-signed with exp in the past

        good = login("alice").get(f"{site_url}/chat/token/", timeout=10).json()["token"]
        claims = jwt.decode(good, options={"verify_signature": False})
        token = jwt.encode({**claims, "exp": 1}, "wrong-key-for-an-expired-token-000000", algorithm="HS256")

    async def scenario():
        async with channels_factory(channels_url(token=token)):
            pass

    with pytest.raises(rtclient.ChannelsClosed) as closed:
        run(scenario())
    assert closed.value.code == 4001


def test_channels_refuses_anonymous_staff_room_and_foreign_origin(login, channels_url, channels_factory):
    alice = rtclient.cookie_header(login("alice"))

    async def refused(url, cookie, **kwargs):
        try:
            async with channels_factory(url, cookie, **kwargs):
                return None
        except rtclient.ChannelsClosed as exc:
            return exc.code
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    assert run(refused(channels_url(), None)) == 4001
    assert run(refused(channels_url("staff"), alice)) == 4003
    # AllowedHostsOriginValidator: a page of another site may not open the socket with the cookie.
    assert run(refused(channels_url(), alice, origin="https://evil.example")) == 403
