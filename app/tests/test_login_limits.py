"""Login limits (chat.login_limits, django-axes): failed logins counted per address and per username, a
clear 429 page past the limit, a correct login accepted again after the cool-off; exempt addresses
counted per username only. Content-Security-Policy on the pages."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import override_settings

from chat import login_limits

pytestmark = pytest.mark.django_db
PASSWORD = "a-correct-horse-battery"


@pytest.fixture
def dave():
    return get_user_model().objects.create_user("dave", password=PASSWORD)


def post_login(client, username, password, address="203.0.113.7"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


@override_settings(AXES_FAILURE_LIMIT=3)
def test_failed_logins_past_the_limit_get_a_clear_429_page(client, dave):
    for _ in range(2):
        assert post_login(client, "dave", "wrong").status_code == 200  # the form again, with its error
    assert post_login(client, "dave", "wrong").status_code == 429  # the limit-th failure locks
    locked = post_login(client, "dave", PASSWORD)
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content and b'id="login-locked"' in locked.content


@override_settings(AXES_FAILURE_LIMIT=3)
def test_the_address_and_the_username_count_separately(client, dave):
    get_user_model().objects.create_user("erin", password=PASSWORD)
    for name in ("nobody-1", "nobody-2", "nobody-3"):
        post_login(client, name, "wrong")
    # The address is locked for every username...
    assert post_login(client, "erin", PASSWORD).status_code == 429
    # ...but not from another address.
    assert post_login(client, "erin", PASSWORD, address="198.51.100.9").status_code == 302


@override_settings(AXES_FAILURE_LIMIT=3, CHAT_LOGIN_LIMIT_EXEMPT=["203.0.113.0/24"])
def test_an_exempt_address_is_counted_per_username_only(client, dave):
    login_limits._exempt_networks.cache_clear()
    try:
        for name in ("nobody-1", "nobody-2", "nobody-3"):
            post_login(client, name, "wrong")
        assert post_login(client, "dave", PASSWORD).status_code == 302
        client.logout()
        for _ in range(3):
            post_login(client, "dave", "wrong")
        assert post_login(client, "dave", PASSWORD).status_code == 429
    finally:
        login_limits._exempt_networks.cache_clear()


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_correct_login_after_the_cool_off_succeeds(client, dave):
    for _ in range(3):
        post_login(client, "dave", "wrong")
    assert post_login(client, "dave", PASSWORD).status_code == 429
    # The cool-off has passed: the failures are older than AXES_COOLOFF_TIME.
    AccessAttempt.objects.update(attempt_time="2000-01-01T00:00:00Z")
    assert post_login(client, "dave", PASSWORD).status_code == 302


def test_admin_logins_are_limited_too(client):
    get_user_model().objects.create_superuser("root", password=PASSWORD)
    with override_settings(AXES_FAILURE_LIMIT=2):
        for _ in range(2):
            client.post("/admin/login/", {"username": "root", "password": "wrong"}, REMOTE_ADDR="203.0.113.8")
        locked = client.post("/admin/login/", {"username": "root", "password": PASSWORD}, REMOTE_ADDR="203.0.113.8")
    assert locked.status_code == 429


def test_pages_carry_a_content_security_policy_without_inline_script(client):
    policy = client.get("/accounts/login/")["Content-Security-Policy"]
    directives = dict((part.split(" ", 1) + [""])[:2] for part in (p.strip() for p in policy.split(";")) if part)
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"].split()[0] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy
