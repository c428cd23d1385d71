"""Chat rooms and messages.

A room's ``name`` becomes part of its Centrifugo channel (``rooms:<name>``), so it is
restricted to ``^[a-z0-9_-]+$`` (max 64 chars); Centrifugo namespace ``rooms`` must be
configured with the subscribe and publish proxies enabled.
"""
from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

ROOM_NAME_MAX_LENGTH = 64
ROOM_NAME_PATTERN = r"^[a-z0-9_-]+$"
CHANNEL_PREFIX = "rooms:"
_CHANNEL_RE = re.compile(r"^rooms:([a-z0-9_-]{1,%d})$" % ROOM_NAME_MAX_LENGTH)

validate_room_name = RegexValidator(
    ROOM_NAME_PATTERN,
    "Room names may contain only lowercase letters, digits, '-' and '_'.",
    code="invalid_room_name",
)


def room_name_from_channel(channel: str) -> str | None:
    """Return the room name of a ``rooms:<name>`` channel, or None if the channel is malformed."""
    match = _CHANNEL_RE.match(channel) if isinstance(channel, str) else None
    return match.group(1) if match else None


class RoomQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> "RoomQuerySet":
        """Rooms ``user`` may enter (see ``Room.allows``), ordered by name."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        qs = self if user.is_staff else self.filter(staff_only=False)
        return qs.order_by("name")


class Room(models.Model):
    name = models.SlugField(
        max_length=ROOM_NAME_MAX_LENGTH, unique=True, validators=[validate_room_name]
    )
    title = models.CharField(max_length=200, blank=True)
    staff_only = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    #: The ``seq`` of the room's latest message (0: none yet); see Message.seq.
    last_seq = models.BigIntegerField(default=0, editable=False)

    objects = RoomQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def channel(self) -> str:
        """Centrifugo channel name of this room: ``"rooms:" + name``."""
        return CHANNEL_PREFIX + self.name

    def allows(self, user: Any) -> bool:
        """True if ``user`` is authenticated and active, and the room is public or the user is staff."""
        if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
            return False
        return not self.staff_only or bool(user.is_staff)

    def display_title(self) -> str:
        return self.title or self.name


class MessageQuerySet(models.QuerySet):
    def create(self, **kwargs: Any) -> "Message":
        """Save a message with the room's next ``seq`` (unless one is given): the room's row is
        locked from the increment of ``Room.last_seq`` until the transaction ends, so one room's
        messages commit one at a time, in ``seq`` and ``id`` order, with no gap."""
        if kwargs.get("seq") is not None:
            return super().create(**kwargs)
        room = kwargs["room"]
        with transaction.atomic(using=self.db):
            Room.objects.using(self.db).filter(pk=room.pk).update(last_seq=F("last_seq") + 1)
            kwargs["seq"] = Room.objects.using(self.db).values_list("last_seq", flat=True).get(pk=room.pk)
            return super().create(**kwargs)


class Message(models.Model):
    """A chat message. ``seq`` numbers a room's messages 1, 2, 3, ... with no gap (allocated by
    ``Message.objects.create``): a client that receives ``seq`` n after n - 2 knows it missed one
    and fills the gap from the database, whatever path lost it."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    seq = models.BigIntegerField(null=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_messages"
    )
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["room", "-created_at"], name="chat_msg_room_created_idx")]
        constraints = [models.UniqueConstraint(fields=["room", "seq"], name="chat_msg_room_seq_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.room}: {self.text[:40]}"

    def as_dict(self) -> dict[str, Any]:
        """Publication payload: ``{"id": int, "seq": int (the room's message number), "room": str,
        "user": username, "text": str, "created_at": ISO 8601 string with timezone}``."""
        return {
            "id": self.pk,
            "seq": self.seq,
            "room": self.room.name,
            "user": self.user.get_username(),
            "text": self.text,
            "created_at": self.created_at.isoformat(),
        }


#: The outbox table's name: Centrifugo's PostgreSQL consumer reads it by this name (the django role
#: passes it to the centrifugo role through the stack topology, plugins/filter/rtstack_topology.py).
OUTBOX_TABLE = "chat_outbox"


class Outbox(models.Model):
    """A server API command waiting for Centrifugo's PostgreSQL async consumer
    (https://centrifugal.dev/docs/server/consumers#postgresql-outbox-consumer), written in the
    transaction that saves what it announces. The columns are the consumer's contract: it reads
    ``id, method, payload, partition`` of one partition in ``id`` order under an advisory lock,
    sends each command, then deletes the rows it sent (at least once: payloads carry an
    ``idempotency_key``). Used with PostgreSQL only (``payload`` is ``jsonb`` there); see
    chat.outbox."""

    id = models.BigAutoField(primary_key=True)
    method = models.TextField(default="publish")
    payload = models.JSONField()
    partition = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = OUTBOX_TABLE
        indexes = [models.Index(fields=["partition", "id"], name="chat_outbox_partition_idx")]

    def __str__(self) -> str:
        return f"{self.method} #{self.pk} (partition {self.partition})"
