"""Chat rooms, their members and messages.

A room's ``name`` becomes part of its Centrifugo channel (``rooms:<name>``), so it is
restricted to ``^[a-z0-9_-]+$`` (max 64 chars); Centrifugo namespace ``rooms`` must be
configured with the subscribe and publish proxies enabled.

Who may enter a room is its access level (``Room.access``, chat.access): ``users``, ``groups``
(``Room.groups``), ``staff`` or ``superuser``. Members (``Membership``) are the users who
joined a room; each keeps a read mark (``last_read_seq``) from which unread counts follow.
"""
from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.validators import RegexValidator
from django.db import models, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from . import access

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
        """Rooms ``user`` may enter (the rule of ``Room.allows``, chat.access), ordered by name.

        One query; the ``groups`` level is an EXISTS over the room-group table joined to the
        user's groups, so a room in several of the user's groups appears once (no DISTINCT
        needed). Anonymous and inactive users get none; superusers every room.
        """
        if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
            return self.none()
        if user.is_superuser:
            return self.order_by("name")
        levels = [access.USERS, access.STAFF] if user.is_staff else [access.USERS]
        in_groups = Exists(
            Room.groups.through.objects.filter(room=OuterRef("pk"), group__user=user)
        )
        return self.filter(Q(access__in=levels) | (Q(access=access.GROUPS) & in_groups)).order_by("name")


class Room(models.Model):
    name = models.SlugField(
        max_length=ROOM_NAME_MAX_LENGTH, unique=True, validators=[validate_room_name]
    )
    title = models.CharField(max_length=200, blank=True)
    #: Who may enter (read, write, subscribe): one of chat.access.LEVELS.
    access = models.CharField(max_length=16, choices=access.CHOICES, default=access.USERS)
    #: The groups whose members may enter when ``access`` is ``groups``.
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="chat_rooms")
    #: Users who joined the room (the index page's "Your rooms"; room activity goes to them).
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="chat_rooms", blank=True
    )
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
        """True if ``user`` may enter this room at its access level (chat.access.level_allows:
        active and signed in; superusers always; ``users`` everyone; ``staff`` is_staff;
        ``groups`` a member of one of ``self.groups``, one query). The one check behind the
        proxy, tokens, consumers, pages, history, posting, presence and notifications."""
        return access.level_allows(
            self.access, user, lambda: self.groups.filter(user=user).exists()
        )

    def allowed_users(self) -> models.QuerySet:
        """The users this room admits (the rule of ``allows``, in SQL): a User queryset to filter
        further, e.g. ``room.allowed_users().filter(chat_memberships__room=room)``."""
        users = get_user_model().objects.filter(is_active=True)
        if self.access == access.USERS:
            return users
        if self.access == access.STAFF:
            return users.filter(Q(is_staff=True) | Q(is_superuser=True))
        if self.access == access.GROUPS:
            in_groups = Exists(
                Room.groups.through.objects.filter(room=self, group__user=OuterRef("pk"))
            )
            return users.filter(Q(is_superuser=True) | in_groups)
        return users.filter(is_superuser=True)

    def access_description(self) -> str:
        """One sentence explaining ``access`` to users (chat.access.DESCRIPTIONS)."""
        return access.DESCRIPTIONS.get(self.access, "")

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
            message = super().create(**kwargs)
            # The author has read up to their own message (a no-op for non-members).
            Membership.objects.using(self.db).filter(
                room=room, user=message.user, last_read_seq__lt=message.seq
            ).update(last_read_seq=message.seq)
            return message


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


class Membership(models.Model):
    """``user`` joined ``room`` (``Room.members``). ``last_read_seq``: the ``Message.seq`` up to
    which the user has read the room (moved forward only: by viewing the room page, by
    ``POST /rooms/<name>/read/``, by writing a message); unread = ``room.last_seq -
    last_read_seq`` (never below 0). A membership outlives a change of the room's access level,
    but a member the level refuses is shown nothing and sent nothing."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_memberships"
    )
    joined_at = models.DateTimeField(default=timezone.now, editable=False)
    last_read_seq = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="chat_membership_room_user_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.room}"

    @property
    def unread(self) -> int:
        """Messages of the room after the read mark: ``room.last_seq - last_read_seq``, >= 0."""
        return max(0, self.room.last_seq - self.last_read_seq)


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
