"""The unidirectional transports (on in this scenario: stack_centrifugo_uni_transports) through
nginx, with a client that has no SDK at all: ``curl`` follows a user's personal channel, as the
README's example does, and gets what ``notify_user`` sends that user.

- uni_http_stream: POST ``{}`` (the connect request; the connect proxy authenticates the session
  cookie), then one JSON object per line;
- uni_sse: GET with ``?cf_connect={}``, then ``data: <JSON>`` events.

https://centrifugal.dev/docs/transports/uni_http_stream, https://centrifugal.dev/docs/transports/uni_sse
"""

from __future__ import annotations

import json
import shlex
import subprocess
import threading
import time
import uuid
from urllib.parse import quote

import pytest

from rtclient.auth import cookie_header


def follow(command: list[str]) -> tuple[subprocess.Popen, list[dict]]:
    """Run ``command`` (curl), parsing every JSON line (``data:`` prefix removed) into a list."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[dict] = []

    def read() -> None:
        for line in process.stdout:
            line = line.strip().removeprefix("data:").strip()
            if line.startswith("{"):
                lines.append(json.loads(line))

    threading.Thread(target=read, daemon=True).start()
    return process, lines


@pytest.mark.parametrize("transport", ["uni_http_stream", "uni_sse"])
def test_curl_follows_a_users_personal_channel(transport, login, site_url, ca_file, hosts, manifest):
    cookie = cookie_header(login("alice"))
    curl = ["curl", "--silent", "--no-buffer", "--cacert", ca_file, "--header", f"Cookie: {cookie}",
            "--max-time", "30"]
    if transport == "uni_http_stream":
        command = curl + ["--header", "Content-Type: application/json", "--data", "{}",
                          f"{site_url}/connection/uni_http_stream"]
    else:
        command = curl + [f"{site_url}/connection/uni_sse?cf_connect={quote('{}')}"]
    process, lines = follow(command)
    try:
        deadline = time.monotonic() + 10
        while not any("connect" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.1)
        connect = next((line["connect"] for line in lines if "connect" in line), None)
        assert connect is not None, f"{transport}: no connect reply ({process.poll()=}, {lines})"
        personal = [channel for channel in connect.get("subs", {}) if channel.startswith(manifest["personal_namespace"])]
        assert personal, f"{transport}: no server-side personal subscription in {connect}"

        marker = uuid.uuid4().hex
        data = json.dumps({"type": "notice", "text": marker})
        hosts["django"][0].check_output(f"chat-manage notify_user alice --data {shlex.quote(data)}")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pushes = [line for line in lines if line.get("pub", {}).get("data", {}).get("text") == marker]
            if pushes:
                assert pushes[0]["channel"] == personal[0]
                return
            time.sleep(0.1)
        raise AssertionError(f"{transport}: the notification did not arrive; got {lines[-3:]}")
    finally:
        process.kill()
