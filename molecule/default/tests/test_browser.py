"""A real browser logs in and chats: headless Chromium (Debian's) driven by Playwright.

Alice and Bob each log in through the login page in their own browser context, open the lobby,
wait until the page's realtime client reports it is live, and a message Alice sends appears on
Bob's page; each page's "Online" list shows both. Once with both on Centrifugo (centrifuge-js),
once with Bob on Django Channels (`?transport=channels`, the page's native WebSocket client),
which his message must cross to Alice's Centrifugo page and back. A screenshot of Bob's page
is saved as evidence (RTSTACK_SCREENSHOT_DIR, default build/). Then, on each transport, a message
sent while Alice's page was disconnected appears once after it reconnects (the gap fill).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("RTSTACK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make deps` (Debian package chromium)")
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_lobby(browser, site_url: str, username: str, password: str, transport: str = "centrifugo"):
    # The test hosts' certificate is self-signed.
    page = browser.new_context(ignore_https_errors=True).new_page()
    page.goto(f"{site_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{site_url}/")
    page.goto(f"{site_url}/rooms/lobby/" + ("?transport=channels" if transport == "channels" else ""))
    status = page.locator("#chat-status")
    playwright_sync.expect(status).to_have_text("connected", timeout=10_000)
    playwright_sync.expect(status).to_have_attribute("data-transport", transport)
    return page


def expect_message(page, text: str, user: str) -> None:
    message = page.locator("#messages li.message", has_text=text)
    playwright_sync.expect(message).to_have_count(1, timeout=10_000)
    playwright_sync.expect(message.locator(".user")).to_have_text(user)


@pytest.mark.parametrize("bob_transport", ["centrifugo", "channels"])
def test_two_browsers_chat_through_the_stack(browser, site_url, credentials, bob_transport):
    alice = open_lobby(browser, site_url, "alice", credentials("user_alice"))
    bob = open_lobby(browser, site_url, "bob", credentials("user_bob"), bob_transport)
    text = f"hello from a browser {uuid.uuid4().hex[:8]}"

    alice.fill("#chat-input", text)
    alice.click("#chat-send")
    expect_message(bob, text, "alice")
    # Sent through the WebSocket, not by posting the form and reloading the page.
    assert bob.url.startswith(f"{site_url}/rooms/lobby/") and "messages" not in bob.url

    reply = f"reply from {bob_transport} {uuid.uuid4().hex[:8]}"
    bob.fill("#chat-input", reply)
    bob.click("#chat-send")
    expect_message(alice, reply, "bob")

    # Presence: each page lists both users as online.
    for page in (alice, bob):
        for user in ("alice", "bob"):
            playwright_sync.expect(page.locator("#presence li", has_text=user)).to_have_count(1, timeout=15_000)

    shots = Path(os.environ.get("RTSTACK_SCREENSHOT_DIR", Path(__file__).resolve().parents[3] / "build"))
    shots.mkdir(parents=True, exist_ok=True)
    bob.screenshot(path=str(shots / f"chat-bob-{bob_transport}.png"), full_page=True)
    for page in (alice, bob):
        page.context.close()


@pytest.mark.parametrize("transport", ["centrifugo", "channels"])
def test_reconnect_fills_the_gap_from_the_database(browser, site_url, credentials, login, transport):
    """Alice's realtime client is disconnected (window.chatDebug, chat.js) while Bob posts through
    the JSON API; when it connects again the page asks the database for what it missed
    (GET /rooms/lobby/messages/?after=<highest id shown>, gapfill.js). Bob's message then shows
    exactly once and last, whichever of the realtime catch-up (Centrifugo recovery, the Channels
    history frame) and the gap fill delivered it first, and the fill returned it."""
    alice = open_lobby(browser, site_url, "alice", credentials("user_alice"), transport)
    status = alice.locator("#chat-status")
    alice.evaluate("() => window.chatDebug.disconnect()")
    playwright_sync.expect(status).to_have_attribute("data-state", "disconnected")

    text = f"sent while {transport} was away {uuid.uuid4().hex[:8]}"
    bob = login("bob")
    response = bob.post(
        f"{site_url}/rooms/lobby/messages/", data={"text": text}, timeout=10, allow_redirects=False,
        # Django's CSRF check over HTTPS: the csrftoken cookie (rotated at login) in the header,
        # plus a same-origin Referer/Origin.
        headers={"Accept": "application/json", "X-CSRFToken": bob.cookies.get("csrftoken", ""),
                 "Referer": f"{site_url}/rooms/lobby/", "Origin": site_url},
    )
    assert response.status_code == 201, response.text[:300]
    message_id = response.json()["message"]["id"]
    messages = alice.locator("#messages li.message", has_text=text)
    playwright_sync.expect(messages).to_have_count(0)  # not delivered while disconnected

    alice.evaluate("() => window.chatDebug.connect()")
    playwright_sync.expect(status).to_have_text("connected", timeout=10_000)
    alice.wait_for_function("id => window.chatDebug.fills.some(f => f.ids.includes(id))",
                            arg=message_id, timeout=10_000)
    expect_message(alice, text, "bob")
    playwright_sync.expect(alice.locator("#messages li.message").last).to_contain_text(text)
    assert alice.evaluate("() => window.chatDebug.lastId()") >= message_id
    alice.context.close()
