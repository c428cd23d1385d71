"""Django Channels WebSocket consumers (the Channels realtime path): ``/ws/chat/<room>/``
(ChatConsumer, one room) and ``/ws/user/`` (NotificationConsumer, a user's notifications for
pages without a room).

Same rules as the Centrifugo proxy path (chat.proxy). Close codes (the socket is accepted
first and then closed, so clients observe the code; a close before accept would reach the
client only as an HTTP 403 handshake refusal):

- ``4001`` unauthenticated (no session user and no valid ``?token=``; see chat.middleware)
- ``4003`` unknown room, or a room whose access level refuses the user (``Room.allows``); also
  later, instead of saving a message, when the room (reloaded for every message) is gone or no
  longer admits the user (level tightened, user deactivated since the connect)

Group membership comes before what a client waits for, so nothing sent to the user right after
is missed: ChatConsumer joins the room group and ``user.<pk>`` before it sends the history
frame; NotificationConsumer joins ``user.<pk>`` before it accepts the handshake.

Server -> client frames (JSON text):

- on join: ``{"type": "history", "messages": [Message.as_dict(), ...]}`` -- the last
  CHAT_HISTORY_SIZE messages, oldest first
- ``{"type": "message", "message": Message.as_dict()}`` -- every message sent to the room (by
  this consumer, or by chat.realtime.publish: form fallback, CLI, and with backend ``both``
  messages sent through Centrifugo's publish proxy)
- ``{"type": "presence", "users": [username, ...]}`` -- reply to a heartbeat
- ``{"type": "error", "code": int, "message": str}`` -- a refused frame; the socket stays open.
  Codes as the publish proxy (chat.messages): 1000 bad data (also non-JSON / binary frames),
  1001 empty, 1002 longer than CHAT_MESSAGE_MAX_LENGTH.
- ``{"type": "notification", "data": dict}`` -- a server push to this user (chat.realtime.
  notify_user, room activity of chat.activity): both consumers are in the group ``user.<pk>``
  (chat.realtime.user_group) and forward its ``{"type": "user.notify", "data": ...}`` events.

Client -> server frames: ``{"text": str}`` sends a message; ``{"type": "heartbeat"}``
refreshes the sender's presence (chat.presence; send one at least every CHAT_PRESENCE_TTL s).

A message is saved in one ``transaction.atomic()`` block (:func:`_save_if_admitted`) that
re-checks the room's access level and writes the room-activity outbox rows with it
(chat.activity.announce_activity; its live sends run in activity's background thread after the
commit, the consumer does not wait for them). The saved message then goes to the room's group;
with CHAT_REALTIME_BACKEND ``both`` it is also published to Centrifugo (chat.realtime.relay), in
a worker thread, so a slow Centrifugo API does not hold up the thread that runs the consumers'
database calls; failures are logged.

NotificationConsumer sends only ``notification`` frames and ignores what the client sends.
"""
from __future__ import annotations

import json
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model
from django.db import transaction

from . import activity, presence, realtime
from .messages import ERROR_BAD_MESSAGE, MessageError, clean_text, history
from .models import Message, Room
from .realtime import group_for, user_group

# Not thread_sensitive: the relay makes HTTP calls (cent, up to CENTRIFUGO_API_DEADLINE s), so
# it must not queue behind (or block) database_sync_to_async work on the shared sync thread.
_relay = sync_to_async(realtime.relay, thread_sensitive=False)

CLOSE_UNAUTHORIZED = 4001
CLOSE_FORBIDDEN = 4003


@database_sync_to_async
def _admitting_room(name: str, user: Any) -> Room | None:
    """The room ``name`` if it exists and its access level admits ``user`` (``Room.allows``, which
    may query the room's groups), else None."""
    room = Room.objects.filter(name=name).first()
    return room if room is not None and room.allows(user) else None


@database_sync_to_async
def _history(room: Room) -> list[dict[str, Any]]:
    return [message.as_dict() for message in history(room)]


@database_sync_to_async
def _save_if_admitted(room_pk: int, user_pk: int, text: str) -> Message | None:
    """Save ``text`` (already validated) as a message of user ``user_pk`` in room ``room_pk``
    and announce its room activity, in one ``transaction.atomic()`` block: the room and the user
    are reloaded and ``room.allows(user)`` is checked again (the level may have been tightened or
    the user deactivated since the connect), then the message is created and
    chat.activity.announce_activity writes its outbox rows in the same transaction (its live
    sends run after the commit, in activity's background thread).

    Returns the saved Message (``room`` and ``user`` loaded, so ``as_dict`` needs no query), or
    None -- nothing saved -- when the room or the user no longer exists or the room refuses the
    user. A database error propagates (nothing is saved)."""
    with transaction.atomic():
        room = Room.objects.filter(pk=room_pk).first()
        user = get_user_model().objects.filter(pk=user_pk).first()
        if room is None or user is None or not room.allows(user):
            return None
        message = Message.objects.create(room=room, user=user, text=text)
        activity.announce_activity(message)
    return message


class UserNotifyMixin:
    """Forwards the events of the group ``user.<pk>`` to the client."""

    async def user_notify(self, event: dict[str, Any]) -> None:
        """Group event ``{"type": "user.notify", "data": dict}`` -> ``{"type": "notification",
        "data": dict}``."""
        await self.send_json({"type": "notification", "data": event["data"]})  # type: ignore[attr-defined]


class ChatConsumer(UserNotifyMixin, AsyncJsonWebsocketConsumer):
    """One WebSocket connection to one room. Member of the groups ``group_for(room.name)`` and
    ``user_group(user)``, joined before the history frame is sent."""

    room: Room | None = None
    group: str | None = None
    personal_group: str | None = None
    refused: bool = False  # closed with 4003 after a refused message: ignore further frames

    async def connect(self) -> None:
        # Accepted first, so that a refusal below reaches the client as a close code.
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        room = await _admitting_room(self.scope["url_route"]["kwargs"]["room"], user)
        if room is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        # Both groups before the history: a client that acts on the history frame (its "joined")
        # gets every message and notification sent after it; the history is read after the joins,
        # so a message saved meanwhile is in the history or arrives as a frame (or both: same id).
        self.room, self.group = room, group_for(room.name)
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.personal_group = user_group(user)
        await self.channel_layer.group_add(self.personal_group, self.channel_name)
        await presence.touch(room.name, user.get_username())
        await self.send_json({"type": "history", "messages": await _history(room)})

    async def disconnect(self, code: int) -> None:
        if self.personal_group is not None:
            await self.channel_layer.group_discard(self.personal_group, self.channel_name)
        if self.group is not None and self.room is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await presence.leave(self.room.name, self.scope["user"].get_username())

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        """Decode a JSON text frame; answer error 1000 (instead of crashing) on anything else."""
        if self.room is None or self.refused:
            return  # refused connection or message, close already sent
        try:
            content = json.loads(text_data) if text_data is not None else None
        except ValueError:
            content = None
        if content is None:
            await self._send_error(MessageError(ERROR_BAD_MESSAGE, "expected a JSON text frame"))
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """A heartbeat (presence answer) or a message: validated (error frame 1000-1002), then
        saved if the room still admits the user (:func:`_save_if_admitted`; otherwise close 4003,
        nothing saved), sent to the room's group and relayed (backend ``both``)."""
        assert self.room is not None and self.group is not None
        user = self.scope["user"]
        if isinstance(content, dict) and content.get("type") == "heartbeat":
            await presence.touch(self.room.name, user.get_username())
            await self.send_json({"type": "presence", "users": await presence.members(self.room.name)})
            return
        try:
            text = clean_text(content)
        except MessageError as exc:
            await self._send_error(exc)
            return
        message = await _save_if_admitted(self.room.pk, user.pk, text)
        if message is None:
            self.refused = True
            await self.close(code=CLOSE_FORBIDDEN)
            return
        data = message.as_dict()
        await presence.touch(self.room.name, user.get_username())
        await self.channel_layer.group_send(self.group, {"type": "chat.message", "message": data})
        await _relay(self.room.channel(), data, source=realtime.CHANNELS)

    async def chat_message(self, event: dict[str, Any]) -> None:
        """Group event ``{"type": "chat.message", "message": dict}`` -> client frame."""
        await self.send_json({"type": "message", "message": event["message"]})

    async def _send_error(self, exc: MessageError) -> None:
        await self.send_json({"type": "error", "code": exc.code, "message": exc.message})


class NotificationConsumer(UserNotifyMixin, AsyncJsonWebsocketConsumer):
    """``/ws/user/``: one signed-in user's notifications (pages without a room, e.g. the index
    page's live unread counts). Joins the group ``user_group(user)`` before it accepts, so a page
    that counts itself connected once the socket opens misses no event sent after that; closes
    with 4001 for an anonymous or inactive user (after accepting, so the client sees the
    code)."""

    personal_group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        self.personal_group = user_group(user)
        await self.channel_layer.group_add(self.personal_group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.personal_group is not None:
            await self.channel_layer.group_discard(self.personal_group, self.channel_name)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        """Client frames carry nothing for this endpoint: ignored."""
