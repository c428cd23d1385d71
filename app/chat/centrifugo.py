"""Server-side calls to the Centrifugo v6 HTTP API (``cent`` client), header ``X-API-Key``.

- ``publish``: POST ``CENTRIFUGO_HTTP_API_URL/publish``
  (https://centrifugal.dev/docs/server/server_api#publish). Called through
  chat.realtime.publish (backend ``centrifugo`` or ``both``), e.g. by the no-JavaScript form
  fallback and by the Channels consumer's cross-delivery; browser messages go through the
  publish proxy instead.
- ``presence_user_ids``: POST ``CENTRIFUGO_HTTP_API_URL/presence``
  (https://centrifugal.dev/docs/server/server_api#presence), used by the room presence view
  (chat.presence_views). Needs ``presence: true`` on the ``rooms`` namespace; otherwise
  Centrifugo answers error 108 "not available".
"""
from __future__ import annotations

import logging
from typing import Any

from cent import CentError, Client, PresenceRequest, PublishRequest
from django.conf import settings

logger = logging.getLogger(__name__)

API_TIMEOUT_SECONDS = 3.0


class CentrifugoUnavailable(RuntimeError):
    """The HTTP API is not configured (CENTRIFUGO_HTTP_API_URL unset) or a call failed
    (the ``cent.CentError`` is chained as ``__cause__``)."""


def get_client() -> Client | None:
    """A ``cent.Client`` for the configured API, or None when CENTRIFUGO_HTTP_API_URL is unset."""
    if not settings.CENTRIFUGO_HTTP_API_URL:
        return None
    return Client(
        settings.CENTRIFUGO_HTTP_API_URL,
        settings.CENTRIFUGO_HTTP_API_KEY,
        timeout=API_TIMEOUT_SECONDS,
    )


def publish(channel: str, data: dict[str, Any]) -> bool:
    """Publish ``data`` into ``channel``; returns False (and logs) if disabled or on any API error."""
    client = get_client()
    if client is None:
        logger.info("CENTRIFUGO_HTTP_API_URL not set; not broadcasting to %s", channel)
        return False
    try:
        client.publish(PublishRequest(channel=channel, data=data))
    except CentError:
        logger.exception("Centrifugo publish to %s failed", channel)
        return False
    return True


def presence_user_ids(channel: str) -> list[str]:
    """User ids of the clients currently subscribed to ``channel``, one per client (a user
    with two tabs appears twice; anonymous clients have ``""``). With the connect proxy and
    with chat.tokens connection tokens the id is ``str(user.pk)``.

    Raises CentrifugoUnavailable when CENTRIFUGO_HTTP_API_URL is unset or on any API error
    (network, timeout, non-200, Centrifugo error such as 108 presence not available).
    """
    client = get_client()
    if client is None:
        raise CentrifugoUnavailable("CENTRIFUGO_HTTP_API_URL is not set")
    try:
        result = client.presence(PresenceRequest(channel=channel))
    except CentError as exc:
        raise CentrifugoUnavailable(f"Centrifugo presence of {channel} failed: {exc}") from exc
    return [info.user for info in result.presence.values()]
