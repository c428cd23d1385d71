"""The one publish API for Django code: ``publish("rooms:<name>", data)``.

``settings.CHAT_REALTIME_BACKEND`` selects the transport(s):

- ``centrifugo``: Centrifugo server HTTP API via ``cent`` (chat.centrifugo.publish) into the
  channel ``rooms:<name>``; subscribers receive ``data`` as the publication data.
- ``channels``: ``group_send(group_for(name), {"type": "chat.message", "message": data})`` on
  the default channel layer; every ChatConsumer in the room sends its client
  ``{"type": "message", "message": data}``.
- ``both``: both of the above (all are attempted even if one fails).

``publish`` is synchronous (it uses ``async_to_sync``): from async code call it through
``asgiref.sync.sync_to_async``.
"""
from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from . import centrifugo
from .models import room_name_from_channel

logger = logging.getLogger(__name__)

GROUP_PREFIX = "chat_room."
CONSUMER_EVENT = "chat.message"  # dispatched to ChatConsumer.chat_message


class RealtimeError(RuntimeError):
    """At least one configured backend did not accept the publication (details are logged)."""


def group_for(room: str) -> str:
    """Channel-layer group of a room: ``"chat_room.<name>"`` (room names are ``[a-z0-9_-]``
    and at most 64 characters, so this is a valid group name, < 100 ASCII characters)."""
    return GROUP_PREFIX + room


def _publish_channels(room: str, data: dict[str, Any]) -> bool:
    try:
        async_to_sync(get_channel_layer().group_send)(
            group_for(room), {"type": CONSUMER_EVENT, "message": data}
        )
    except Exception:  # channel layer down (e.g. Redis unreachable) or ChannelFull
        logger.exception("channel layer publish to %s failed", group_for(room))
        return False
    return True


def publish(channel: str, data: dict[str, Any]) -> None:
    """Broadcast ``data`` (a JSON-serialisable dict, normally ``Message.as_dict()``) to the
    room of ``channel`` (``"rooms:<name>"``) on the configured backend(s).

    Raises ValueError for a malformed channel, RealtimeError if any backend failed (Centrifugo:
    CENTRIFUGO_HTTP_API_URL unset or an API error; Channels: a channel-layer error).
    """
    room = room_name_from_channel(channel)
    if room is None:
        raise ValueError(f"channel must look like rooms:<name>, got {channel!r}")
    backend = settings.CHAT_REALTIME_BACKEND
    failed = []
    if backend in ("centrifugo", "both") and not centrifugo.publish(channel, data):
        failed.append("centrifugo")
    if backend in ("channels", "both") and not _publish_channels(room, data):
        failed.append("channels")
    if failed:
        raise RealtimeError(f"publish to {channel} failed on: {', '.join(failed)}")
