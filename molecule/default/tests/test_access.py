"""Channel access levels (django-instant's names) on the deployed stack: one room per level, made
with the operators' ``ensure_room`` command, and four users (alice in the group ``team``, bob,
carol staff, admin superuser), each tried on every surface that lets a user into a room:

- Centrifugo's subscribe proxy (centrifuge-js over WebSocket through nginx: subscribed, or
  unsubscribed with code 103 "permission denied");
- the subscription token view (200 or 403);
- the Channels consumer (the history frame, or close code 4003);
- the room page and its messages view, the gap fill (200 or 403).

Anonymous visitors get nothing anywhere (Centrifugo's connect proxy refuses them, Channels closes
with 4001, the views redirect to the login page).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
import requests

from rtclient import auth
from rtclient.auth import cookie_header
from rtclient.channels import ChannelsClient, ChannelsClosed, channels_url

LEVELS = ("users", "groups", "staff", "superuser")
#: user -> the levels that let them in.
ALLOWED = {
    "alice": {"users", "groups"},
    "bob": {"users"},
    "carol": {"users", "staff"},
    "admin": set(LEVELS),
}


@pytest.fixture(scope="module")
def rooms(hosts) -> dict[str, str]:
    """Level -> a fresh room of that level (``groups``: the group ``team``)."""
    suffix = uuid.uuid4().hex[:6]
    out = {}
    for level in LEVELS:
        name = f"level-{level}-{suffix}"
        group = " --group team" if level == "groups" else ""
        hosts["django"][0].check_output(f"chat-manage ensure_room {name} --access {level}{group}")
        out[level] = name
    return out


@pytest.mark.parametrize("username", list(ALLOWED))
def test_subscribe_proxy_follows_the_level(username, rooms, login, node_clients):
    channels = {f"rooms:{room}": level for level, room in rooms.items()}
    clients = node_clients(login(username), names=("websocket",), channels=list(channels))
    outcome = {}
    for channel, level in channels.items():
        event = clients.wait_for(lambda e, c=channel: e["event"] in ("subscribed", "unsubscribed") and e["channel"] == c,
                                 15, f"the outcome of {channel}")
        outcome[level] = event["event"] == "subscribed"
        if not outcome[level]:
            assert event["code"] == 103, event
    assert {level for level, ok in outcome.items() if ok} == ALLOWED[username]


@pytest.mark.parametrize("username", list(ALLOWED))
def test_http_views_and_tokens_follow_the_level(username, rooms, login, site_url):
    session = login(username)
    for level, room in rooms.items():
        allowed = level in ALLOWED[username]
        for path in (f"/rooms/{room}/", f"/rooms/{room}/messages/?after=0"):
            status = session.get(site_url + path, timeout=10, allow_redirects=False).status_code
            assert status == (200 if allowed else 403), f"{username} GET {path}: {status}"
        try:
            auth.subscription_token(session, site_url, f"rooms:{room}")
            token_status = 200
        except auth.TokenError as exc:
            token_status = exc.status_code
        assert token_status == (200 if allowed else 403), f"{username} subscription token for {level}: {token_status}"


@pytest.mark.parametrize("username", list(ALLOWED))
def test_channels_consumer_follows_the_level(username, rooms, login, site_url, ca_file):
    cookie = cookie_header(login(username))

    async def close_code(room: str) -> int | None:
        try:
            async with ChannelsClient(channels_url(site_url, room), cookie, site_url, ca_file):
                return None
        except ChannelsClosed as exc:
            return exc.code

    codes = {level: asyncio.run(close_code(room)) for level, room in rooms.items()}
    assert {level for level, code in codes.items() if code is None} == ALLOWED[username], codes
    assert {code for code in codes.values() if code is not None} <= {4003}, codes


def test_anonymous_visitors_get_nothing(rooms, site_url, ca_file):
    room = rooms["users"]
    for path in (f"/rooms/{room}/", f"/rooms/{room}/messages/"):
        answer = requests.get(site_url + path, verify=ca_file, timeout=10, allow_redirects=False)
        assert answer.status_code == 302 and "/accounts/login/" in answer.headers["Location"]

    async def close_code() -> int | None:
        try:
            async with ChannelsClient(channels_url(site_url, room), None, site_url, ca_file):
                return None
        except ChannelsClosed as exc:
            return exc.code

    assert asyncio.run(close_code()) == 4001
