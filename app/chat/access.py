"""Channel access levels of a room (after django-instant's channel levels).

A room's ``access`` is one of:

- ``users``: every active signed-in user;
- ``groups``: active members of at least one of the room's Django groups (``Room.groups``);
- ``staff``: active users with ``is_staff``;
- ``superuser``: active users with ``is_superuser``.

An active superuser is allowed at every level, staff at ``users`` and ``staff`` (not at
``groups`` unless in one of the groups). Inactive and anonymous users are never allowed.
django-instant's ``public`` level (anonymous visitors) is deliberately not offered: a chat
room is never readable without an account.

The rule exists three times, kept equal by tests/test_access.py: :func:`level_allows` (Python,
``Room.allows``), ``RoomQuerySet.visible_to`` (rooms a user may enter, SQL) and
``Room.allowed_users`` (users a room admits, SQL), in chat.models.
"""
from __future__ import annotations

from typing import Any, Callable

USERS = "users"
GROUPS = "groups"
STAFF = "staff"
SUPERUSER = "superuser"

#: Model field choices, in order of increasing restriction.
CHOICES = [
    (USERS, "Every signed-in user"),
    (GROUPS, "Members of the room's groups"),
    (STAFF, "Staff"),
    (SUPERUSER, "Superusers"),
]
LEVELS = tuple(value for value, _ in CHOICES)

#: The explanatory line the room page shows under the level (``#room-access-help``).
DESCRIPTIONS = {
    USERS: "Every signed-in user may read and write in this room.",
    GROUPS: "Only members of this room's groups (and superusers) may read and write here.",
    STAFF: "Only staff members may read and write in this room.",
    SUPERUSER: "Only superusers may read and write in this room.",
}


def level_allows(level: str, user: Any, in_groups: Callable[[], bool]) -> bool:
    """True if ``user`` may enter a room of access ``level``.

    Args:
        level: one of LEVELS (an unknown level allows superusers only).
        user: a Django user or AnonymousUser (``is_authenticated``, ``is_active``,
            ``is_staff``, ``is_superuser`` are read).
        in_groups: called only for level ``groups`` (and a user who is not a superuser):
            True if the user belongs to one of the room's groups (may run a query).
    """
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    if getattr(user, "is_superuser", False):
        return True
    if level == USERS:
        return True
    if level == STAFF:
        return bool(getattr(user, "is_staff", False))
    if level == GROUPS:
        return bool(in_groups())
    return False
