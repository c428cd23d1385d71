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
  transaction; otherwise a failover API call (chat.centrifugo.broadcast, up to
  CENTRIFUGO_API_DEADLINE s). Idempotency key of batch ``i``: ``chat-activity-<message id>-<i>``.
- Channels: ``group_send("user.<pk>", {"type": "user.notify", "data": event})`` per recipient,
  concurrently (at most :data:`CHANNELS_CONCURRENCY` at a time, one ``async_to_sync``); clients
  get ``{"type": "notification", "data": event}``.

What runs where (the message path never waits for a live send):

1. In the caller, inside its transaction (each in a savepoint): the recipients query and, with
   the outbox, the outbox rows -- they commit or roll back with the message.
2. Deferred with ``transaction.on_commit`` (dropped if the message rolls back; at once in
   autocommit mode), then run in a background daemon thread (:func:`_start`): the live sends,
   i.e. the API ``broadcast`` calls (Centrifugo without the outbox) and the Channels
   ``group_send`` calls (:func:`send_live`). The HTTP response, the publish proxy's answer to
   Centrifugo (1 s proxy timeout) and the Channels consumer do not wait for them. The thread
   uses no database connection (everything it needs is computed before the commit).

Best effort: the message is saved already and clients fill gaps from the database, so failures
are logged and never raised (the outbox writes run in a savepoint, so a refused write does not
spoil the caller's transaction). A process that exits while a live send is in flight loses it
(the unread count catches up on the next page load).
"""
from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError, transaction

from . import centrifugo, outbox, realtime
from .models import Message

logger = logging.getLogger(__name__)

EVENT_TYPE = "room_activity"
#: At most this many Channels ``group_send`` calls of one announcement are in flight at once.
CHANNELS_CONCURRENCY = 64


@dataclass(frozen=True)
class LiveSend:
    """What the background thread sends for one message (no model instances: the thread does
    not touch the database).

    ``broadcasts``: ``(personal channels, idempotency key)`` per Centrifugo API ``broadcast``
    call (empty with the outbox or without the Centrifugo backend); ``groups``: the recipients'
    Channels groups ``user.<pk>`` (empty without the Channels backend)."""

    message_id: int
    event: dict[str, Any]
    broadcasts: list[tuple[list[str], str]]
    groups: list[str]


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


def _broadcast_batches(message: Message, pks: list[int]) -> list[tuple[list[str], str]]:
    """``(personal channels, idempotency key)`` per batch of CHAT_ACTIVITY_BATCH_SIZE recipients."""
    channels = [realtime.personal_channel(pk) for pk in pks]
    return [
        (batch, f"chat-activity-{message.pk}-{index}")
        for index, batch in enumerate(batches(channels, settings.CHAT_ACTIVITY_BATCH_SIZE))
    ]


def _enqueue_broadcasts(message: Message, event: dict[str, Any], pks: list[int]) -> bool:
    """The outbox rows (one per batch), in the caller's transaction, each in a savepoint. False
    (logged) if a write failed."""
    ok = True
    for index, (batch, key) in enumerate(_broadcast_batches(message, pks)):
        payload = {"channels": batch, "data": event, "idempotency_key": key}
        try:
            with transaction.atomic():
                outbox.enqueue("broadcast", payload, partition_key=message.room.channel())
        except DatabaseError:
            logger.exception("outbox write of activity batch %d of message %s failed", index, message.pk)
            ok = False
    return ok


async def _group_send_all(groups: list[str], event: dict[str, Any]) -> list[str]:
    """``group_send(group, event)`` for every group, at most CHANNELS_CONCURRENCY at once; the
    groups whose send failed (each failure logged)."""
    layer = get_channel_layer()
    if layer is None:
        logger.error("no channel layer configured; activity not sent to %d groups", len(groups))
        return list(groups)
    limit = asyncio.Semaphore(CHANNELS_CONCURRENCY)

    async def send(group: str) -> None:
        async with limit:
            await layer.group_send(group, event)

    results = await asyncio.gather(*(send(group) for group in groups), return_exceptions=True)
    failed = []
    for group, result in zip(groups, results):
        if isinstance(result, BaseException):
            logger.error("channel layer send to %s failed", group, exc_info=result)
            failed.append(group)
    return failed


def _send_channels(groups: list[str], event: dict[str, Any]) -> bool:
    """The Channels part of a live send, from sync code; True if every group got the event."""
    try:
        failed = async_to_sync(_group_send_all)(
            groups, {"type": realtime.USER_EVENT, "data": event}
        )
    except Exception:  # e.g. the layer's backend is unreachable before the first send
        logger.exception("channel layer sends of room activity failed")
        return False
    return not failed


def send_live(live: LiveSend) -> None:
    """The live part of an announcement (runs in the background thread, after the commit):
    the Channels group sends first (fast), then the Centrifugo API broadcasts (failover, up to
    CENTRIFUGO_API_DEADLINE s each). Never raises; a failure is logged ("not announced")."""
    failed = []
    if live.groups and not _send_channels(live.groups, live.event):
        failed.append(realtime.CHANNELS)
    broadcast_ok = True
    for channels, key in live.broadcasts:
        if not centrifugo.broadcast(channels, live.event, idempotency_key=key):
            broadcast_ok = False
    if not broadcast_ok:
        failed.append(realtime.CENTRIFUGO)
    if failed:
        logger.warning("activity of message %s not announced (fully) on %s", live.message_id, ", ".join(failed))


def _run_logged(fn: Callable[..., Any], *args: Any) -> None:
    """Thread target: ``fn(*args)``, an escaping exception logged instead of printed."""
    try:
        fn(*args)
    except Exception:
        logger.exception("room activity: background send failed")


def _start(fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` in a new daemon thread and return at once (the one place where the
    background thread starts: tests replace this function to run ``fn`` synchronously)."""
    threading.Thread(target=_run_logged, args=(fn, *args), name="chat-activity", daemon=True).start()


def _after_commit(live: LiveSend) -> None:
    """on_commit callback: hand the live send to the background thread."""
    _start(send_live, live)


def announce_activity(message: Message) -> list[int]:
    """Announce the room activity of ``message`` (just saved; Message with ``room``, ``user``
    and ``seq``) to the members who should get it, on every enabled backend (module docstring).

    Call it right after the save, inside the same ``transaction.atomic()`` block when there is
    one: the recipients query and the outbox rows run now, in savepoints of the caller's
    transaction (the rows commit with the message); the live sends are registered with
    ``transaction.on_commit`` and run in a background thread after the commit (never if the
    transaction rolls back). Returns the recipients' pks (empty: nothing is sent). Never raises
    for a backend or database failure: it logs (the message is saved, the unread count catches
    up on the next page load), and the caller's transaction stays usable.
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
    backends = realtime.enabled_backends()
    broadcasts: list[tuple[list[str], str]] = []
    if realtime.CENTRIFUGO in backends:
        if not settings.CHAT_OUTBOX:
            broadcasts = _broadcast_batches(message, pks)
        elif not _enqueue_broadcasts(message, event, pks):
            logger.warning("activity of message %s not announced (fully) on %s", message.pk, realtime.CENTRIFUGO)
    groups = [realtime.user_group(pk) for pk in pks] if realtime.CHANNELS in backends else []
    if broadcasts or groups:
        live = LiveSend(message_id=message.pk, event=event, broadcasts=broadcasts, groups=groups)
        # robust: a failure to start the thread is logged, never raised into the committed request.
        transaction.on_commit(lambda: _after_commit(live), robust=True)
    return pks
