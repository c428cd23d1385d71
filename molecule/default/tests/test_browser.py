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
import re
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


def logged_in_page(browser, site_url: str, username: str, password: str, block_websocket: bool = False,
                   locale: str = "en-US"):
    """A new browser context (its own cookies; ``locale`` for the page's formats) logged in as
    ``username``. ``block_websocket``: every WebSocket to Centrifugo is refused before it opens
    (Playwright's WebSocket routing closes it with 1006, as a proxy that drops the upgrade makes
    the browser report), so centrifuge-js must fall back to HTTP-streaming or SSE."""
    # The test hosts' certificate is self-signed.
    context = browser.new_context(ignore_https_errors=True, locale=locale)
    if block_websocket:
        context.route_web_socket(re.compile(r".*/connection/websocket.*"),
                                 lambda ws: ws.close(code=1006, reason="WebSockets blocked"))
    page = context.new_page()
    page.goto(f"{site_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{site_url}/")
    return page


def open_room(page, site_url: str, room: str = "lobby", transport: str = "centrifugo"):
    """Go to ``room`` and wait until its realtime client is live on ``transport``."""
    page.goto(f"{site_url}/rooms/{room}/" + ("?transport=channels" if transport == "channels" else ""))
    status = page.locator("#chat-status")
    playwright_sync.expect(status).to_have_text("connected", timeout=15_000)
    playwright_sync.expect(status).to_have_attribute("data-transport", transport)
    return page


def open_lobby(browser, site_url: str, username: str, password: str, transport: str = "centrifugo"):
    return open_room(logged_in_page(browser, site_url, username, password), site_url, "lobby", transport)


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
def test_reconnect_fills_the_gap_from_the_database(browser, site_url, credentials, login, post_message, transport):
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
    message_id = post_message(login("bob"), "lobby", text)["id"]
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


def test_an_injected_inline_script_does_not_run(browser, site_url, credentials):
    """The app's Content-Security-Policy (script-src 'self', no 'unsafe-inline'): a script element injected
    into the room page, as an XSS would, is refused by the browser, which reports the violation; the page's
    own scripts (the realtime client) still run under the same policy."""
    page = open_room(logged_in_page(browser, site_url, "alice", credentials("user_alice")), site_url)
    reports: list[str] = []
    page.on("console", lambda message: reports.append(message.text))
    try:
        page.add_script_tag(content="window.rtstackInjected = true;")
    except playwright_sync.Error:
        pass  # Playwright may report the refused script as an error; what counts is that it did not run
    page.wait_for_timeout(500)
    assert page.evaluate("window.rtstackInjected === true") is False, "the injected inline script ran"
    assert any("Content Security Policy" in text for text in reports), reports
    page.context.close()


def test_blocked_websocket_falls_back_and_two_users_chat(browser, site_url, credentials):
    """WebSockets refused (a proxy that blocks the upgrade): centrifuge-js takes the next transport
    of the page's list (HTTP-streaming), the page says so, and two users chat over it."""
    alice = open_room(logged_in_page(browser, site_url, "alice", credentials("user_alice"), block_websocket=True),
                      site_url)
    bob = open_room(logged_in_page(browser, site_url, "bob", credentials("user_bob"), block_websocket=True), site_url)
    for page in (alice, bob):
        playwright_sync.expect(page.locator("#live-transport")).to_have_text("http_stream")
        playwright_sync.expect(page.locator("#chat-status")).to_have_attribute("data-centrifugo-transport",
                                                                               "http_stream")
    text = f"no WebSocket here {uuid.uuid4().hex[:8]}"
    alice.fill("#chat-input", text)
    alice.click("#chat-send")
    expect_message(bob, text, "alice")
    reply = f"still chatting {uuid.uuid4().hex[:8]}"
    bob.fill("#chat-input", reply)
    bob.click("#chat-send")
    expect_message(alice, reply, "bob")
    assert "messages" not in bob.url and "messages" not in alice.url  # live, not the form fallback
    for page in (alice, bob):
        page.context.close()


@pytest.mark.parametrize("transport", ["centrifugo", "channels"])
def test_unread_count_on_the_index_changes_live(browser, site_url, credentials, login, join_room, post_message,
                                                transport):
    """Bob's index page lists a room he belongs to; each message Alice posts there raises its
    unread count while the page stays open (the room activity event on bob's personal channel,
    or his ``user.<id>`` Channels group)."""
    room = f"unread-{transport}-{uuid.uuid4().hex[:6]}"
    alice_session = login("alice")
    join_room(alice_session, room)
    bob = logged_in_page(browser, site_url, "bob", credentials("user_bob"))
    bob.goto(f"{site_url}/rooms/{room}/")  # visits the room: exists, read up to now
    bob.locator("#join-room").click()
    bob.goto(f"{site_url}/" + ("?transport=channels" if transport == "channels" else ""))
    playwright_sync.expect(bob.locator("#notify-status")).to_have_attribute("data-state", "connected",
                                                                            timeout=15_000)
    unread = bob.locator(f'#my-rooms li.room[data-name="{room}"] .unread')
    playwright_sync.expect(unread).to_have_attribute("data-count", "0")
    post_message(alice_session, room, "first while bob looks at the index")
    playwright_sync.expect(unread).to_have_attribute("data-count", "1", timeout=5_000)
    post_message(alice_session, room, "second")
    playwright_sync.expect(unread).to_have_attribute("data-count", "2", timeout=5_000)
    playwright_sync.expect(unread).to_have_text("2")
    bob.context.close()


@pytest.mark.parametrize("locale,pattern", [("en-US", r"^\d\d:\d\d [AP]M$"), ("en-GB", r"^\d\d:\d\d$")])
def test_history_and_live_messages_share_the_users_time_format(browser, site_url, credentials, login, post_message,
                                                               locale, pattern):
    """The room's history (rendered by Django) and live messages (added by chat.js) show their time
    in one format, the browser locale's: 12-hour for en-US, 24-hour for en-GB."""
    post_message(login("bob"), "lobby", "in the history before alice opens the room")
    alice = open_room(logged_in_page(browser, site_url, "alice", credentials("user_alice"), locale=locale), site_url)
    text = f"live at {locale} {uuid.uuid4().hex[:6]}"
    post_message(login("bob"), "lobby", text)
    expect_message(alice, text, "bob")
    times = alice.locator("#messages li.message time").all_inner_texts()
    assert len(times) >= 2
    bad = [t for t in times if not re.match(pattern, t.strip())]
    assert not bad, f"{locale}: times not in the locale's format {pattern}: {bad[:5]} (all: {times[-5:]})"
    alice.context.close()
