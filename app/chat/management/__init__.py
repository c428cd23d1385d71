"""Management commands of the chat app, and what they share."""
from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError


def json_object(raw: str, name: str) -> dict[str, Any]:
    """``raw`` parsed as a JSON object (the payload argument ``name`` of a command, e.g. ``--data``).

    Raises CommandError (the command exits non-zero with the message) when ``raw`` is not valid
    JSON or not an object."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise CommandError(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CommandError(f"{name} must be a JSON object")
    return data
