"""Parsers of the environment variables the settings are read from (chatsite.settings): each raises
ImproperlyConfigured naming the variable and what it must be, so a bad value stops the process at start-up."""
from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool = False) -> bool:
    """Parse a 0/1 (also true/false, yes/no, on/off) variable; raise ImproperlyConfigured otherwise."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be 0 or 1, got {raw!r}")


def env_int(name: str, default: int, minimum: int = 1) -> int:
    """Parse an integer variable (>= ``minimum``); raise ImproperlyConfigured otherwise."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    """Parse a comma-separated list, dropping blanks."""
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]
