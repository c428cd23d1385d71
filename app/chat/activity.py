"""Room activity: after a message is saved in a room, tell the room's other members, wherever
they are, so that pages without that room open (the index page's "Your rooms") update their
unread counts live.

Who: every member of the room (chat.models.Membership) whom the room's access level still
admits (``Room.allowed_users``), except the author. What, to each of them::

    {"type": "room_activity", "room": "<name>", "seq": <Message.seq>, "id": <Message.id>,
     "user": "<author username>"}

How, per backend enabled by CHAT_REALTIME_BACKEND (chat.realtime):

- Centrifugo: into the recipients' personal channels (chat.realtime.personal_channel) with the
  server API ``broadcast`` method (https://centrifugal.dev/docs/server/server_api#broadcast),
  one call per batch of at most ``settings.CHAT_ACTIVITY_BATCH_SIZE`` channels (recipients in
  user pk order). With ``settings.CHAT_OUTBOX`` each batch is an outbox row (method
  ``broadcast``, payload ``{"channels": [...], "data": ..., "idempotency_key": ...}``, partition
  of the room's channel, so it follows the room's publication) written in the caller's
  transaction; otherwise a failover API call (chat.centrifugo.broadcast). Idempotency key of
  batch ``i``: ``chat-activity-<message id>-<i>``.
- Channels: ``group_send("user.<pk>", {"type": "user.notify", "data": event})`` per recipient;
  clients get ``{"type": "notification", "data": event}``.

Best effort: the message is saved already and clients fill gaps from the database, so failures
are logged and never raised (the outbox writes run in a savepoint, so a refused write does not
spoil the caller's transaction).
"""
from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction

from . import centrifugo, outbox, realtime
from .models import Message

logger = logging.getLogger(__name__)

EVENT_TYPE = "room_activity"


def activity_event(message: Message) -> dict[str, Any]:
    """The event for ``message`` (a saved Message with ``seq``): ``{"type": "room_activity",
    "room": str, "seq": int, "id": int, "user": author username}``."""
    return {
        "type": EVENT_TYPE,
        "room": message.room.name,
        "seq": message.seq,
        "id": message.pk,
        "user": message.user.get_username(),
    }


def recipients(message: Message) -> list[int]:
    """Pks (ascending) of the members of ``message.room`` the room admits, minus the author.
    One query."""
    room = message.room
    users = room.allowed_users().filter(chat_memberships__room=room).exclude(pk=message.user_id)
    return list(users.order_by("pk").values_list("pk", flat=True))


def batches(items: list[Any], size: int) -> list[list[Any]]:
    """``items`` cut into consecutive lists of at most ``size`` (>= 1) items."""
    return [items[start:start + size] for start in range(0, len(items), size)]


def _centrifugo(message: Message, event: dict[str, Any], pks: list[int]) -> bool:
    channels = [realtime.personal_channel(pk) for pk in pks]
    ok = True
    for index, batch in enumerate(batches(channels, settings.CHAT_ACTIVITY_BATCH_SIZE)):
        key = f"chat-activity-{message.pk}-{index}"
        if settings.CHAT_OUTBOX:
            payload = {"channels": batch, "data": event, "idempotency_key": key}
            try:
                with transaction.atomic():
                    outbox.enqueue("broadcast", payload, partition_key=message.room.channel())
            except DatabaseError:
                logger.exception("outbox write of activity batch %d of message %s failed", index, message.pk)
                ok = False
        elif not centrifugo.broadcast(batch, event, idempotency_key=key):
            ok = False
    return ok


def _channels(event: dict[str, Any], pks: list[int]) -> bool:
    results = [
        realtime.group_send(realtime.user_group(pk), {"type": realtime.USER_EVENT, "data": event})
        for pk in pks
    ]
    return all(results)


def announce_activity(message: Message) -> list[int]:
    """Send the room-activity event of ``message`` (just saved; Message with ``room``, ``user``
    and ``seq``) to the members who should get it, on every enabled backend (module docstring).

    Call it right after the save, inside the same ``transaction.atomic()`` block when there is
    one (the outbox rows then commit with the message). Returns the recipients' pks (empty:
    nothing was sent). Never raises for a backend or database failure: it logs (the message is
    saved, the unread count catches up on the next page load); its database work runs in a
    savepoint, so the caller's transaction stays usable.
    """
    try:
        with transaction.atomic():
            pks = recipients(message)
    except DatabaseError:
        logger.exception("recipients of the activity of message %s unknown", message.pk)
        return []
    if not pks:
        return pks
    event = activity_event(message)
    failed = []
    for backend in realtime.enabled_backends():
        ok = _centrifugo(message, event, pks) if backend == realtime.CENTRIFUGO else _channels(event, pks)
        if not ok:
            failed.append(backend)
    if failed:
        logger.warning("activity of message %s not announced (fully) on %s", message.pk, ", ".join(failed))
    return pks
