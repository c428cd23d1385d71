"""Room membership and read marks (chat.models.Membership), the rules behind the join / leave /
read endpoints (chat.membership_views), the join-by-name page and the room page.

- A user joins only a room whose access level admits them (``Room.allows``); a new member has
  read everything up to now (``last_read_seq`` = the room's ``last_seq``).
- Read marks only move forward, and never past the room's last message.
- A member's unread count is ``room.last_seq - last_read_seq``, never below 0; the index page
  lists the memberships of rooms that still admit the user (:func:`memberships_of`).
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from .models import Membership, Room

REFUSED = "You do not have access to this room."


def join(room: Room, user: Any) -> bool:
    """Make ``user`` a member of ``room``; True if they were not one already.

    Raises django.core.exceptions.PermissionDenied (message :data:`REFUSED`) when the room's
    access level refuses the user.
    """
    if not room.allows(user):
        raise PermissionDenied(REFUSED)
    try:
        with transaction.atomic():
            _, created = Membership.objects.get_or_create(
                room=room, user=user, defaults={"last_read_seq": room.last_seq}
            )
    except IntegrityError:  # a concurrent join of the same user won
        return False
    return created


def leave(room: Room, user: Any) -> bool:
    """End ``user``'s membership of ``room``; True if there was one."""
    deleted, _ = Membership.objects.filter(room=room, user=user).delete()
    return deleted > 0


def mark_read(room: Room, user: Any, seq: int) -> bool:
    """Move ``user``'s read mark in ``room`` forward to ``seq``, capped at ``room.last_seq`` (as
    loaded). True if it moved; False when it was already there or further, or the user is not
    a member. One UPDATE, so concurrent marks cannot move it back."""
    seq = min(int(seq), room.last_seq)
    updated = Membership.objects.filter(room=room, user=user, last_read_seq__lt=seq).update(
        last_read_seq=seq
    )
    return updated > 0


def is_member(room: Room, user: Any) -> bool:
    """True if ``user`` (authenticated) is a member of ``room``."""
    return bool(getattr(user, "is_authenticated", False)) and Membership.objects.filter(
        room=room, user=user
    ).exists()


def memberships_of(user: Any) -> list[Membership]:
    """``user``'s memberships of rooms that still admit them (``Room.objects.visible_to``),
    ordered by room name, with ``room`` loaded (``Membership.unread`` needs it). Two queries at
    most, whatever the number of rooms."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(
        Membership.objects.filter(user=user, room__in=Room.objects.visible_to(user))
        .select_related("room")
        .order_by("room__name")
    )
