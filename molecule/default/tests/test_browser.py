"""A real browser logs in and chats: headless Chromium (Debian's) driven by Playwright.

Alice and Bob each log in through the login page in their own browser context, open the lobby,
wait until centrifuge-js reports the subscription, and a message Alice sends appears on Bob's
page. A screenshot of Bob's page is saved as evidence (RTSTACK_SCREENSHOT_DIR, default build/).
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


def open_lobby(browser, site_url: str, username: str, password: str):
    # The test hosts' certificate is self-signed.
    page = browser.new_context(ignore_https_errors=True).new_page()
    page.goto(f"{site_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{site_url}/")
    page.goto(f"{site_url}/rooms/lobby/")
    playwright_sync.expect(page.locator("#chat-status")).to_have_text("connected", timeout=10_000)
    return page


def test_two_browsers_chat_through_the_stack(browser, site_url, credentials):
    alice = open_lobby(browser, site_url, "alice", credentials("user_alice"))
    bob = open_lobby(browser, site_url, "bob", credentials("user_bob"))
    text = f"hello from a browser {uuid.uuid4().hex[:8]}"

    alice.fill("#chat-input", text)
    alice.click("#chat-send")

    message = bob.locator("#messages li.message", has_text=text)
    playwright_sync.expect(message).to_have_count(1, timeout=10_000)
    playwright_sync.expect(message.locator(".user")).to_have_text("alice")
    # Sent through the WebSocket (publish proxy), not by reloading the page.
    assert bob.url == f"{site_url}/rooms/lobby/"

    shots = Path(os.environ.get("RTSTACK_SCREENSHOT_DIR", Path(__file__).resolve().parents[3] / "build"))
    shots.mkdir(parents=True, exist_ok=True)
    bob.screenshot(path=str(shots / "chat-bob.png"), full_page=True)
