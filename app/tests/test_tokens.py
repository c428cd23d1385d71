"""JWT endpoints /chat/token/ and /chat/token/subscription/ (chat.token_views, chat.tokens)."""
from __future__ import annotations

import time

import jwt
import pytest

from chat import tokens
from tests.conftest import JWT_SECRET


def _decode(token: str) -> dict:
    return jwt.decode(token, JWT_SECRET, algorithms=["HS256"])


def test_connection_token_claims(realtime_settings, user_client, user):
    response = user_client.get("/chat/token/")
    assert response.status_code == 200
    claims = _decode(response.json()["token"])
    assert claims["sub"] == str(user.pk)
    assert abs(claims["exp"] - (time.time() + 300)) <= 2
    assert tokens.user_pk_from_token(response.json()["token"]) == user.pk


def test_connection_token_ttl_setting(realtime_settings, user_client):
    realtime_settings.CHAT_JWT_TTL = 60
    claims = _decode(user_client.get("/chat/token/").json()["token"])
    assert abs(claims["exp"] - (time.time() + 60)) <= 2


def test_token_requires_login(realtime_settings, client):
    response = client.get("/chat/token/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_token_get_only(realtime_settings, user_client):
    assert user_client.post("/chat/token/").status_code == 405


@pytest.mark.parametrize("path", ["/chat/token/", "/chat/token/subscription/?channel=rooms:lobby"])
def test_503_without_secret(realtime_settings, user_client, path):
    realtime_settings.CHAT_JWT_SECRET = ""
    response = user_client.get(path)
    assert response.status_code == 503
    assert "CHAT_JWT_SECRET" in response.json()["error"]


def test_subscription_token_claims(realtime_settings, user_client, user, lobby):
    response = user_client.get("/chat/token/subscription/", {"channel": "rooms:lobby"})
    assert response.status_code == 200
    claims = _decode(response.json()["token"])
    assert claims["sub"] == str(user.pk) and claims["channel"] == "rooms:lobby"
    assert abs(claims["exp"] - (time.time() + 300)) <= 2


def test_subscription_token_refused_for_staff_room(realtime_settings, user_client, staff_room):
    response = user_client.get("/chat/token/subscription/", {"channel": "rooms:staff"})
    assert response.status_code == 403


def test_subscription_token_staff_room_for_staff(realtime_settings, staff_client, staff_room):
    response = staff_client.get("/chat/token/subscription/", {"channel": "rooms:staff"})
    assert _decode(response.json()["token"])["channel"] == "rooms:staff"


@pytest.mark.parametrize("channel, status", [("", 400), ("lobby", 400), ("rooms:nosuch", 404)])
def test_subscription_token_bad_channel(realtime_settings, user_client, channel, status):
    assert user_client.get("/chat/token/subscription/", {"channel": channel}).status_code == status


def test_expired_token_rejected(realtime_settings):
    token = jwt.encode({"sub": "1", "exp": int(time.time()) - 1}, JWT_SECRET, algorithm="HS256")
    with pytest.raises(jwt.ExpiredSignatureError):
        tokens.user_pk_from_token(token)


def test_token_without_exp_rejected(realtime_settings):
    token = jwt.encode({"sub": "1"}, JWT_SECRET, algorithm="HS256")
    with pytest.raises(jwt.InvalidTokenError):
        tokens.user_pk_from_token(token)


def test_token_of_a_previous_key_is_accepted_during_a_rotation(realtime_settings):
    """CHAT_JWT_PREVIOUS_SECRETS: a token signed with the key being replaced (or the one coming) still
    authenticates; a token signed with any other key does not, and an expired one stays expired."""
    previous = "p" * 40
    realtime_settings.CHAT_JWT_PREVIOUS_SECRETS = [previous]
    token = jwt.encode({"sub": "7", "exp": int(time.time()) + 60}, previous, algorithm="HS256")
    assert tokens.user_pk_from_token(token) == 7
    with pytest.raises(jwt.InvalidSignatureError):
        tokens.user_pk_from_token(jwt.encode({"sub": "7", "exp": int(time.time()) + 60}, "x" * 40, algorithm="HS256"))
    with pytest.raises(jwt.ExpiredSignatureError):
        tokens.user_pk_from_token(jwt.encode({"sub": "7", "exp": int(time.time()) - 10}, previous, algorithm="HS256"))
    realtime_settings.CHAT_JWT_PREVIOUS_SECRETS = []
    with pytest.raises(jwt.InvalidSignatureError):
        tokens.user_pk_from_token(token)
