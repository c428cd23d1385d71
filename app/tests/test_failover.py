"""Publishing that survives a dead Centrifugo node or a lost reply: chat.centrifugo's failover over
every node's API URL with one idempotency key, and chat.outbox (the publication written with the
message). The HTTP side is real: a refused port and a small local HTTP server that answers like
Centrifugo's API (https://centrifugal.dev/docs/server/server_api), reached through cent."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from chat import centrifugo, outbox, realtime
from chat.models import Message, Outbox, Room

DEAD = "http://127.0.0.1:9/api"  # the discard port: nothing listens, connections are refused
DATA = {"id": 7, "room": "lobby", "user": "alice", "text": "hi", "created_at": "2026-01-01T00:00:00+00:00"}


class Api:
    """A local HTTP server in a thread; ``replies`` are answered in turn (then the last one
    again), every request body is kept in ``requests``."""

    def __init__(self, replies: list[tuple[int, dict]]) -> None:
        self.replies, self.requests = list(replies), []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.requests.append((self.path, self.headers.get("X-API-Key"), body))
                status, reply = api.replies.pop(0) if len(api.replies) > 1 else api.replies[0]
                payload = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api_settings(settings):
    settings.CENTRIFUGO_HTTP_API_KEY = "api-key"
    settings.CENTRIFUGO_API_ATTEMPTS = 6
    settings.CENTRIFUGO_API_DEADLINE = 5
    settings.CHAT_OUTBOX = False
    settings.CHAT_REALTIME_BACKEND = "centrifugo"
    return settings


@pytest.fixture
def ok_api():
    api = Api([(200, {"result": {}})])
    yield api
    api.close()


def test_api_urls_split_on_commas(settings):
    settings.CENTRIFUGO_HTTP_API_URL = " http://a:9000/api, ,http://b:9000/api "
    assert centrifugo.api_urls() == ["http://a:9000/api", "http://b:9000/api"]


def test_publish_fails_over_from_a_dead_node_with_one_key(api_settings, ok_api):
    api_settings.CENTRIFUGO_HTTP_API_URL = f"{DEAD},{ok_api.url}"
    for _ in range(4):  # whichever URL a call starts from, it ends on the live one
        assert centrifugo.publish("rooms:lobby", DATA, idempotency_key="chat-rooms:lobby-7") is True
    assert len(ok_api.requests) == 4
    for path, key, body in ok_api.requests:
        assert (path, key) == ("/api/publish", "api-key")
        assert body == {"channel": "rooms:lobby", "data": DATA, "idempotency_key": "chat-rooms:lobby-7"}


def test_a_refused_api_key_is_retried_with_the_next_and_remembered(api_settings):
    # A key rotation under way: this node already holds the new key (the second of CENTRIFUGO_HTTP_API_KEY).
    api = Api([(401, {}), (200, {"result": {}})])
    try:
        api_settings.CENTRIFUGO_HTTP_API_KEY = "old-key,new-key"
        api_settings.CENTRIFUGO_HTTP_API_URL = api.url
        centrifugo._key_for_url.clear()
        assert centrifugo.publish("rooms:lobby", DATA, idempotency_key="chat-rooms:lobby-7") is True
        assert centrifugo.publish("rooms:lobby", DATA, idempotency_key="chat-rooms:lobby-8") is True
    finally:
        centrifugo._key_for_url.clear()
        api.close()
    # Refused with the old key (not run: one publication), accepted with the new one, which the next call uses.
    assert [key for _, key, _ in api.requests] == ["old-key", "new-key", "new-key"]


def test_internal_error_is_retried_with_the_same_key(api_settings):
    api = Api([(200, {"error": {"code": 100, "message": "internal server error"}}), (200, {"result": {}})])
    try:
        api_settings.CENTRIFUGO_HTTP_API_URL = api.url
        realtime.publish("rooms:lobby", DATA)
    finally:
        api.close()
    keys = [body["idempotency_key"] for _, _, body in api.requests]
    assert keys == ["chat-rooms:lobby-7", "chat-rooms:lobby-7"]


def test_an_error_every_node_would_repeat_is_not_retried(api_settings):
    api = Api([(200, {"error": {"code": 102, "message": "unknown channel"}})])
    try:
        api_settings.CENTRIFUGO_HTTP_API_URL = f"{api.url},{api.url}"
        with pytest.raises(realtime.RealtimeError):
            realtime.publish("rooms:lobby", DATA)
    finally:
        api.close()
    assert len(api.requests) == 1


def test_every_node_dead_raises_within_the_bounds(api_settings):
    api_settings.CENTRIFUGO_HTTP_API_URL = f"{DEAD},{DEAD.replace(':9/', ':7/')}"
    api_settings.CENTRIFUGO_API_ATTEMPTS = 4
    with pytest.raises(centrifugo.CentrifugoUnavailable, match="every attempt"):
        centrifugo.call_with_failover(lambda client: client.publish(
            centrifugo.PublishRequest(channel="rooms:lobby", data=DATA)), "publish")


def test_idempotency_key_is_per_saved_message():
    assert realtime.idempotency_key("rooms:lobby", DATA) == "chat-rooms:lobby-7"
    first, second = (realtime.idempotency_key("rooms:lobby", {"text": "x"}) for _ in range(2))
    assert first != second and first.startswith("chat-")


def test_partition_is_stable_per_channel():
    assert outbox.partition_for("rooms:lobby", 1) == 0
    assert outbox.partition_for("rooms:lobby", 8) == outbox.partition_for("rooms:lobby", 8)
    assert {outbox.partition_for(f"rooms:r{i}", 4) for i in range(50)} == {0, 1, 2, 3}


@pytest.mark.django_db
def test_outbox_row_commits_and_rolls_back_with_the_message(api_settings):
    api_settings.CHAT_OUTBOX = True
    api_settings.CHAT_OUTBOX_PARTITIONS = 4
    api_settings.CENTRIFUGO_HTTP_API_URL = DEAD  # never called: the outbox replaces the API call
    user = get_user_model().objects.create_user("carol", password="pw-carol-1234")
    room = Room.objects.get_or_create(name="lobby")[0]
    with transaction.atomic():
        message = Message.objects.create(room=room, user=user, text="kept")
        realtime.publish(room.channel(), message.as_dict())
    with pytest.raises(RuntimeError), transaction.atomic():
        gone = Message.objects.create(room=room, user=user, text="rolled back")
        realtime.publish(room.channel(), gone.as_dict())
        raise RuntimeError("the view failed after publishing")
    (row,) = Outbox.objects.all()
    assert row.method == "publish"
    assert row.partition == outbox.partition_for("rooms:lobby", 4)
    assert row.payload == {"channel": "rooms:lobby", "data": message.as_dict(),
                           "idempotency_key": f"chat-rooms:lobby-{message.pk}"}
