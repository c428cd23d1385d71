"""Server-side publishing through the Centrifugo v6 HTTP API (``cent`` client).

Called through chat.realtime.publish (backend ``centrifugo`` or ``both``), e.g. by the
no-JavaScript form fallback; browser messages go through the publish proxy instead. API: POST ``CENTRIFUGO_HTTP_API_URL/publish`` with header ``X-API-Key``
(https://centrifugal.dev/docs/server/server_api#publish).
"""
from __future__ import annotations

import logging
from typing import Any

from cent import CentError, Client, PublishRequest
from django.conf import settings

logger = logging.getLogger(__name__)

API_TIMEOUT_SECONDS = 3.0


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
