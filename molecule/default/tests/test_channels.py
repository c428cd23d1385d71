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

from rtclient import auth
from rtclient.auth import cookie_header
from rtclient.channels import ChannelsClient, ChannelsClosed, channels_url as make_channels_url

ROOM = "lobby"
CHANNEL = f"rooms:{ROOM}"


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="session")
def channels_url(site_url):
    """The Channels consumer's URL for a room, through nginx."""
    def _url(room: str = ROOM, token: str | None = None) -> str:
        return make_channels_url(site_url, room, token)
    return _url


@pytest.fixture(scope="session")
def daphne_urls(manifest):
    """ws:// URLs of the lobby on every daphne process of every Django host (straight to the
    process, at the address and port the manifest lists)."""
    return [make_channels_url(item.url, ROOM) for item in manifest.daphne]


@pytest.fixture(scope="session")
def channels_factory(site_url, ca_file):
    """ChannelsClient with the site's origin and CA: channels_factory(url, cookie)."""
    def _make(url: str, cookie: str | None = None, origin: str | None = site_url):
        return ChannelsClient(url, cookie=cookie, origin=origin, ca_file=ca_file)
    return _make


def test_every_daphne_instance_runs(daphne_urls, manifest, groups, host_by_name):
    # The scenario's inventory: two processes per Django host.
    assert len(daphne_urls) >= 2
    # The daphne instances systemd runs on each Django host are the ones the manifest lists.
    for name in groups["django"]:
        units = host_by_name[name].check_output("systemctl list-units --plain --no-legend 'chat-daphne@*.service'")
        ports = sorted(int(line.split("@")[1].split(".service")[0]) for line in units.splitlines() if line)
        assert ports and ports == sorted(item.port for item in manifest.daphne_on(name)), (name, units)


def test_channels_message_crosses_daphne_processes_through_redis(login, daphne_urls, channels_url,
                                                                 channels_factory, site_url):
    alice, bob = cookie_header(login("alice")), cookie_header(login("bob"))
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
    bob = cookie_header(login("bob"))
    text = f"published {uuid.uuid4()}"
    data = json.dumps({"text": text, "user": "operator"})

    async def scenario():
        client = client_factory(ws_url, bob)
        try:
            inbox = await client.subscribe(CHANNEL)
            async with channels_factory(channels_url(), bob) as channels_client:
                # The operators' entry point to publish(): the management command on a Django host.
                out = await asyncio.to_thread(
                    hosts["django"][0].check_output, f"chat-manage publish {CHANNEL} {shlex.quote(data)}")
                got_channels = await channels_client.wait_message(text)
            got_centrifugo = await inbox.wait_for(lambda d: d.get("text") == text)
            return out, got_centrifugo, got_channels
        finally:
            await client.close()

    out, got_centrifugo, got_channels = run(scenario())
    assert out.strip().endswith("published")
    assert got_centrifugo == got_channels == {"text": text, "user": "operator"}


def test_both_backends_are_one_chat(login, ws_url, channels_url, client_factory, channels_factory):
    alice, bob = cookie_header(login("alice")), cookie_header(login("bob"))
    from_centrifugo, from_channels = f"via centrifugo {uuid.uuid4()}", f"via channels {uuid.uuid4()}"

    async def scenario():
        client = client_factory(ws_url, alice)
        try:
            inbox = await client.subscribe(CHANNEL)
            async with channels_factory(channels_url(), bob) as channels_client:
                await inbox.publish({"text": from_centrifugo})
                got_on_channels = await channels_client.wait_message(from_centrifugo)
                await channels_client.send({"text": from_channels})
                got_on_centrifugo = await inbox.wait_for(lambda d: d.get("text") == from_channels)
            return got_on_channels, got_on_centrifugo
        finally:
            await client.close()

    got_on_channels, got_on_centrifugo = run(scenario())
    assert got_on_channels["user"] == "alice"
    assert got_on_centrifugo["user"] == "bob"


def test_presence_lists_two_connected_users_on_each_path(login, ws_url, channels_url, client_factory,
                                                          channels_factory, site_url):
    sessions = {name: login(name) for name in ("alice", "bob")}
    cookies = {name: cookie_header(s) for name, s in sessions.items()}

    def presence() -> dict:
        response = sessions["alice"].get(f"{site_url}/rooms/{ROOM}/presence/", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    async def scenario():
        clients = [client_factory(ws_url, cookies[name]) for name in ("alice", "bob")]
        try:
            for client in clients:
                await client.subscribe(CHANNEL)
            on_centrifugo = await asyncio.to_thread(presence)
        finally:
            for client in clients:
                await client.close()
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


def test_connection_token_replaces_the_cookie(login, site_url, ws_url, channels_url, client_factory,
                                              channels_factory):
    token = auth.connection_token(login("alice"), site_url)

    async def scenario():
        # Centrifugo verifies the JWT itself (before, and instead of, the connect proxy): no cookie.
        client = client_factory(ws_url, None, token=token)
        try:
            inbox = await client.subscribe(CHANNEL)
        finally:
            await client.close()
        # The Channels socket takes the same token in its query string.
        async with channels_factory(channels_url(token=token)) as channels_client:
            await channels_client.send({"type": "heartbeat"})
            frame = await channels_client.wait_for(lambda f: f.get("type") == "presence")
        return inbox, frame

    _, frame = run(scenario())
    assert "alice" in frame["users"]


def test_subscription_token_opens_a_staff_room(login, site_url, ws_url, client_factory):
    admin, alice = login("admin"), login("alice")
    channel = "rooms:staff"
    # Django decides who may have a subscription token: not a regular user.
    with pytest.raises(auth.TokenError) as refused:
        auth.subscription_token(alice, site_url, channel)
    assert refused.value.status_code == 403
    connection = auth.connection_token(admin, site_url)
    subscription = auth.subscription_token(admin, site_url, channel)

    async def scenario():
        client = client_factory(ws_url, None, token=connection)
        try:
            await client.connect(timeout=5)
            subscriber = await client.subscribe(channel, token=subscription, timeout=5)
            return subscriber.subscription.state
        finally:
            await client.close()

    assert str(run(scenario())).endswith("SUBSCRIBED")


@pytest.mark.parametrize("token", ["not-a-jwt", "expired"])
def test_bad_token_closes_the_channels_socket_with_4001(token, login, site_url, channels_url,
                                                         channels_factory):
    if token == "expired":
        # A real token's claims re-signed (PyJWT, as the app signs them) with exp in the past.
        token = auth.expired_copy(auth.connection_token(login("alice"), site_url))

    async def scenario():
        async with channels_factory(channels_url(token=token)):
            pass

    with pytest.raises(ChannelsClosed) as closed:
        run(scenario())
    assert closed.value.code == 4001


def test_channels_refuses_anonymous_staff_room_and_foreign_origin(login, channels_url, channels_factory):
    alice = cookie_header(login("alice"))

    async def refused(url, cookie, **kwargs):
        try:
            async with channels_factory(url, cookie, **kwargs):
                return None
        except ChannelsClosed as exc:
            return exc.code
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    assert run(refused(channels_url(), None)) == 4001
    assert run(refused(channels_url("staff"), alice)) == 4003
    # AllowedHostsOriginValidator: a page of another site may not open the socket with the cookie.
    assert run(refused(channels_url(), alice, origin="https://evil.example")) == 403
