"""Server-side calls to the Centrifugo v6 HTTP API (``cent`` client), header ``X-API-Key``.

``CENTRIFUGO_HTTP_API_URL`` is one API URL or several separated by commas: every Centrifugo
node's (the django role writes them all, from the stack topology), so that no single node is in
the path. Each call tries them in turn, starting from a different one in each process.

- ``publish``: POST ``<api url>/publish``
  (https://centrifugal.dev/docs/server/server_api#publish), retried over the URLs with one
  ``idempotency_key``: Centrifugo keeps the result of a publication with a key for
  ``idempotent_result_ttl`` (5 minutes by default) in the broker, which every node shares, so a
  retry of a publication that did go through is not published twice. Called through
  chat.realtime.publish (backend ``centrifugo`` or ``both``), e.g. by the no-JavaScript form
  fallback and by the Channels consumer's cross-delivery; browser messages go through the
  publish proxy instead.
- ``broadcast``: POST ``<api url>/broadcast``
  (https://centrifugal.dev/docs/server/server_api#broadcast): one publication into many channels
  in one call (room activity into members' personal channels, chat.activity), with the same
  failover and one ``idempotency_key`` (which Centrifugo applies per channel, so a retry of a
  partly delivered broadcast publishes only where it had not).
- ``presence_user_ids``: POST ``<api url>/presence``
  (https://centrifugal.dev/docs/server/server_api#presence), used by the room presence view
  (chat.presence_views). Needs ``presence: true`` on the ``rooms`` namespace; otherwise
  Centrifugo answers error 108 "not available".
"""
from __future__ import annotations

import itertools
import logging
import time
import uuid
from typing import Any, Callable, TypeVar

from collections.abc import Sequence

from cent import (
    BroadcastRequest,
    CentApiResponseError,
    CentError,
    CentUnauthorizedError,
    Client,
    PresenceRequest,
    PublishRequest,
)
from django.conf import settings

logger = logging.getLogger(__name__)

API_TIMEOUT_SECONDS = 3.0
#: Centrifugo API reply codes worth trying on another node: 100 internal (e.g. that node lost
#: Redis) and 111 too many requests (https://centrifugal.dev/docs/server/codes). Any other code
#: (unknown channel, bad request, ...) would be answered the same by every node.
RETRYABLE_CODES = frozenset({100, 111})

T = TypeVar("T")

# Where each process starts in the URL list: spread the processes over the nodes.
_start = itertools.count(int(uuid.uuid4().int % 1024))
# API URL -> the index in api_keys() of the key that node last accepted.
_key_for_url: dict[str, int] = {}


class CentrifugoUnavailable(RuntimeError):
    """The HTTP API is not configured (CENTRIFUGO_HTTP_API_URL unset) or a call failed on every
    node (the last ``cent.CentError`` is chained as ``__cause__``)."""


def api_urls() -> list[str]:
    """The API URLs of ``settings.CENTRIFUGO_HTTP_API_URL`` (comma-separated, blanks dropped),
    e.g. ``["http://10.0.0.5:9000/api", "http://10.0.0.6:9000/api"]``; empty when unset."""
    return [url.strip() for url in settings.CENTRIFUGO_HTTP_API_URL.split(",") if url.strip()]


def api_keys() -> list[str]:
    """The API keys of ``settings.CENTRIFUGO_HTTP_API_KEY``: the current one, then the alternates a node may
    hold during a key rotation (comma-separated; ``[""]`` when unset). Centrifugo holds one ``http_api.key``
    and reads it at start only (internal/app/mux.go, v6), so while its nodes restart one by one onto a new key
    some hold the old one and some the new: a call refused with 401 is tried again with the next key."""
    keys = [key.strip() for key in settings.CENTRIFUGO_HTTP_API_KEY.split(",") if key.strip()]
    return keys or [""]


def get_client(url: str | None = None) -> Client | None:
    """A ``cent.Client`` for ``url`` (default: the first configured API URL), or None when
    CENTRIFUGO_HTTP_API_URL is unset."""
    urls = api_urls()
    if url is None and not urls:
        return None
    return Client(url or urls[0], api_keys()[0], timeout=API_TIMEOUT_SECONDS)


def _retryable(exc: CentError) -> bool:
    return not isinstance(exc, CentApiResponseError) or exc.code in RETRYABLE_CODES


def call_with_failover(call: Callable[[Client], T], what: str) -> T:
    """Run ``call(client)`` against the configured API URLs in turn until one succeeds.

    Bounded by ``settings.CENTRIFUGO_API_ATTEMPTS`` calls in all (rounds over the URLs) and
    ``settings.CENTRIFUGO_API_DEADLINE`` seconds (no attempt starts after it; each attempt's
    timeout is API_TIMEOUT_SECONDS, cut to what is left), with a short pause (0.1 s, then 0.2 s,
    up to 1 s) after a round in which every URL failed. An API reply error that every node would
    answer the same (codes outside RETRYABLE_CODES) stops the retries. A 401 (the node holds another key
    of ``api_keys()``, during a key rotation) is tried again at once on the same node with the next key,
    and the key a node accepts is remembered; a refused call was not run, so the retry publishes once.

    Returns ``call``'s result. Raises CentrifugoUnavailable when CENTRIFUGO_HTTP_API_URL is unset
    or every attempt failed (the last error is chained). ``what`` names the call in the logs.
    """
    urls = api_urls()
    if not urls:
        raise CentrifugoUnavailable("CENTRIFUGO_HTTP_API_URL is not set")
    attempts = settings.CENTRIFUGO_API_ATTEMPTS
    deadline = time.monotonic() + settings.CENTRIFUGO_API_DEADLINE
    first = next(_start) % len(urls)
    last_error: CentError | None = None
    for attempt in range(attempts):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        if attempt and attempt % len(urls) == 0:
            pause = min(1.0, 0.1 * 2 ** (attempt // len(urls) - 1), left)
            time.sleep(pause)
            left = deadline - time.monotonic()
            if left <= 0:
                break
        url = urls[(first + attempt) % len(urls)]
        keys = api_keys()
        known = _key_for_url.get(url, 0) % len(keys)
        for index in [known, *(i for i in range(len(keys)) if i != known)]:
            client = Client(url, keys[index], timeout=min(API_TIMEOUT_SECONDS, max(left, 0.1)))
            try:
                result = call(client)
            except CentUnauthorizedError as exc:
                last_error = exc
                logger.warning("Centrifugo %s via %s refused API key %d of %d", what, url, index + 1, len(keys))
                continue
            except CentError as exc:
                last_error = exc
                logger.warning("Centrifugo %s via %s failed (attempt %d of %d): %s", what, url, attempt + 1, attempts,
                               exc)
                break
            _key_for_url[url] = index
            return result
        if last_error is not None and not _retryable(last_error):
            break
    raise CentrifugoUnavailable(f"Centrifugo {what} failed on every attempt: {last_error}") from last_error


def publish(channel: str, data: dict[str, Any], idempotency_key: str | None = None) -> bool:
    """Publish ``data`` into ``channel`` with failover over the nodes (call_with_failover), every
    attempt with the same ``idempotency_key`` (default: a random one for this call), so a retry
    after a lost reply is not delivered twice
    (https://centrifugal.dev/docs/server/server_api#publish, ``idempotency_key``).

    Returns True once a node acknowledged it; False (and logs) when CENTRIFUGO_HTTP_API_URL is
    unset or every attempt failed.
    """
    if not api_urls():
        logger.info("CENTRIFUGO_HTTP_API_URL not set; not broadcasting to %s", channel)
        return False
    request = PublishRequest(channel=channel, data=data,
                             idempotency_key=idempotency_key or f"chat-{uuid.uuid4().hex}")
    try:
        call_with_failover(lambda client: client.publish(request), f"publish to {channel}")
    except CentrifugoUnavailable:
        logger.exception("Centrifugo publish to %s failed", channel)
        return False
    return True


def broadcast(channels: Sequence[str], data: dict[str, Any], idempotency_key: str | None = None) -> bool:
    """Publish ``data`` into every channel of ``channels`` with one ``broadcast`` API call
    (https://centrifugal.dev/docs/server/server_api#broadcast), failing over from node to node
    (call_with_failover) with the same ``idempotency_key`` (default: a random one for this call).

    The reply holds one response per channel, in order. A channel answered with a code worth
    another try (RETRYABLE_CODES) makes the whole call fail over (the key drops the repeats on
    the channels that had it); any other per-channel error (e.g. 102 unknown channel: the
    personal namespace is not configured) is logged.

    Returns True once a node published into every channel; False (and logs) when
    CENTRIFUGO_HTTP_API_URL is unset, every attempt failed, or some channel was refused.
    """
    channels = list(channels)
    if not api_urls():
        logger.info("CENTRIFUGO_HTTP_API_URL not set; not broadcasting to %d channels", len(channels))
        return False
    request = BroadcastRequest(channels=channels, data=data,
                               idempotency_key=idempotency_key or f"chat-{uuid.uuid4().hex}")

    def call(client: Client) -> list[tuple[str, Any]]:
        result = client.broadcast(request)
        errors = [(channel, response.error) for channel, response in zip(channels, result.responses)
                  if response.error is not None]
        for _, error in errors:
            if error.code in RETRYABLE_CODES:
                raise CentApiResponseError(error.code, f"broadcast refused on a channel: {error.message}")
        return errors

    try:
        errors = call_with_failover(call, f"broadcast to {len(channels)} channels")
    except CentrifugoUnavailable:
        logger.exception("Centrifugo broadcast to %d channels failed", len(channels))
        return False
    if errors:
        logger.error("Centrifugo broadcast refused on %d of %d channels, e.g. %s: %s",
                     len(errors), len(channels), errors[0][0], errors[0][1])
        return False
    return True


def presence_user_ids(channel: str) -> list[str]:
    """User ids of the clients currently subscribed to ``channel``, one per client (a user
    with two tabs appears twice; anonymous clients have ``""``). With the connect proxy and
    with chat.tokens connection tokens the id is ``str(user.pk)``.

    Raises CentrifugoUnavailable when CENTRIFUGO_HTTP_API_URL is unset or every attempt failed
    (network, timeout, non-200, Centrifugo error such as 108 presence not available).
    """
    result = call_with_failover(lambda client: client.presence(PresenceRequest(channel=channel)),
                                f"presence of {channel}")
    return [info.user for info in result.presence.values()]
