"""Validation of chat message payloads, shared by the Centrifugo publish proxy
(chat.proxy.publish) and the Channels consumer (chat.consumers.ChatConsumer).

Error codes are the application codes of the publish proxy (Centrifugo custom error range
[400, 1999], https://centrifugal.dev/docs/server/proxy#return-custom-error); the consumer
sends the same codes in its ``{"type": "error", ...}`` frames.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings

ERROR_BAD_MESSAGE = 1000
ERROR_EMPTY_MESSAGE = 1001
ERROR_MESSAGE_TOO_LONG = 1002


class MessageError(ValueError):
    """A refused message: ``code`` (int, one of the ERROR_* constants) and ``message`` (str)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def clean_text(data: Any) -> str:
    """Validate message data ``{"text": str}`` and return the stripped text.

    Rules: ``data`` must be a dict whose ``text`` is a string (else 1000), non-empty after
    ``str.strip()`` (else 1001) and at most ``settings.CHAT_MESSAGE_MAX_LENGTH`` characters
    (else 1002). Raises MessageError with that code.
    """
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str):
        raise MessageError(ERROR_BAD_MESSAGE, "data must be {\"text\": string}")
    text = text.strip()
    if not text:
        raise MessageError(ERROR_EMPTY_MESSAGE, "message is empty")
    limit = settings.CHAT_MESSAGE_MAX_LENGTH
    if len(text) > limit:
        raise MessageError(ERROR_MESSAGE_TOO_LONG, f"message too long (max {limit} characters)")
    return text


def history(room: Any) -> list[Any]:
    """The last ``settings.CHAT_HISTORY_SIZE`` Message objects of ``room`` (a chat.models.Room),
    oldest first, with ``user`` and ``room`` preloaded for ``Message.as_dict()``. Sync ORM."""
    latest = room.messages.select_related("user", "room").order_by("-created_at", "-id")[
        : settings.CHAT_HISTORY_SIZE
    ]
    return list(reversed(latest))
