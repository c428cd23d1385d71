"""The one publish API for Django code: ``publish("rooms:<name>", data)`` to a room,
``notify_user(user, data)`` to one user.

``settings.CHAT_REALTIME_BACKEND`` selects the transport(s):

- ``centrifugo``: into the channel ``rooms:<name>``; subscribers receive ``data`` as the
  publication data. With ``settings.CHAT_OUTBOX`` (PostgreSQL) the publication is written into
  the outbox in the caller's transaction and Centrifugo's PostgreSQL consumer publishes it
  (chat.outbox); otherwise the server HTTP API is called at once via ``cent``
  (chat.centrifugo.publish, failing over from node to node). Both carry an idempotency key
  (:func:`idempotency_key`), so a retry is never delivered twice.
- ``channels``: ``group_send(group_for(name), {"type": "chat.message", "message": data})`` on
  the default channel layer; every ChatConsumer in the room sends its client
  ``{"type": "message", "message": data}``.
- ``both``: both of the above (all are attempted even if one fails).

``publish(channel, data, backends=("centrifugo",))`` restricts one call to a subset of the
enabled backends (names ``"centrifugo"`` / ``"channels"``; a name the setting does not enable
is a ValueError).

Cross-delivery (backend ``both``): a message that arrives on one path is delivered there by
that path itself -- the Centrifugo publish proxy returns it as the publication data
(chat.proxy.publish), the Channels consumer sends it to its group (chat.consumers) -- and is
then handed to ``relay(channel, data, source=<that path>)``, which publishes it on the *other*
backend only, so that one room is one chat whatever transport a browser uses. ``relay`` is a
no-op unless both backends are enabled, and it logs failures instead of raising (the message
is saved and delivered on its own path already).

Server push to one user (``notify_user``): on Centrifugo into the user's personal channel
``<CHAT_PERSONAL_NAMESPACE>:#<pk>`` (:func:`personal_channel`), to which Centrifugo subscribes
every connection of that user server-side (``client.subscribe_to_user_personal_channel``,
https://centrifugal.dev/docs/server/server_subs#automatic-personal-channel-subscription; the
browser receives it on ``centrifuge.on("publication")``); on Channels to the group
``user.<pk>`` (:func:`user_group`), which every ChatConsumer and NotificationConsumer of the
user joins, as ``{"type": "user.notify", "data": data}`` -> client frame
``{"type": "notification", "data": data}``. Room activity (chat.activity) uses the same two
addresses.

``publish``, ``relay`` and ``notify_user`` are synchronous (they use ``async_to_sync``): from async code call
them through ``asgiref.sync.sync_to_async``.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError, transaction

from . import centrifugo, outbox
from .models import Room, room_name_from_channel

logger = logging.getLogger(__name__)

GROUP_PREFIX = "chat_room."
CONSUMER_EVENT = "chat.message"  # dispatched to ChatConsumer.chat_message
USER_GROUP_PREFIX = "user."
USER_EVENT = "user.notify"  # dispatched to ChatConsumer / NotificationConsumer.user_notify

CENTRIFUGO = "centrifugo"
CHANNELS = "channels"
BACKENDS = (CENTRIFUGO, CHANNELS)


class RealtimeError(RuntimeError):
    """At least one configured backend did not accept the publication (details are logged)."""


class NotAllowed(PermissionError):
    """notify_user(..., room=room): the room's access level refuses the user; nothing was sent."""


def group_for(room: str) -> str:
    """Channel-layer group of a room: ``"chat_room.<name>"`` (room names are ``[a-z0-9_-]``
    and at most 64 characters, so this is a valid group name, < 100 ASCII characters)."""
    return GROUP_PREFIX + room


def _user_pk(user: Any) -> int:
    pk = getattr(user, "pk", user)
    if not isinstance(pk, int) or isinstance(pk, bool):
        raise TypeError(f"expected a saved user or a user pk, got {user!r}")
    return pk


def user_group(user: Any) -> str:
    """Channel-layer group of one user's connections: ``"user.<pk>"``. ``user``: a saved user or
    its pk (int); TypeError otherwise."""
    return f"{USER_GROUP_PREFIX}{_user_pk(user)}"


def personal_channel(user: Any) -> str:
    """Centrifugo personal channel of a user: ``"<CHAT_PERSONAL_NAMESPACE>:#<pk>"`` (user-limited
    channel ``#<pk>`` in that namespace, the one Centrifugo subscribes the user's connections
    to when ``client.subscribe_to_user_personal_channel.personal_channel_namespace`` names it).
    ``user``: a saved user or its pk (int); TypeError otherwise."""
    return f"{settings.CHAT_PERSONAL_NAMESPACE}:#{_user_pk(user)}"


def enabled_backends() -> tuple[str, ...]:
    """Backend names enabled by ``settings.CHAT_REALTIME_BACKEND``: ``("centrifugo",)``,
    ``("channels",)`` or ``("centrifugo", "channels")`` for ``both``."""
    backend = settings.CHAT_REALTIME_BACKEND
    return BACKENDS if backend == "both" else (backend,)


def idempotency_key(channel: str, data: dict[str, Any]) -> str:
    """The key of one publication for Centrifugo's ``idempotency_key``: ``chat-<channel>-<id>``
    for a saved message (``data["id"]``, an int), so every path and every retry of it share the
    key; a random ``chat-<hex>`` otherwise."""
    message_id = data.get("id")
    if isinstance(message_id, int) and not isinstance(message_id, bool):
        return f"chat-{channel}-{message_id}"
    return f"chat-{uuid.uuid4().hex}"


def _publish_centrifugo(channel: str, data: dict[str, Any], key: str | None = None) -> bool:
    key = key or idempotency_key(channel, data)
    if settings.CHAT_OUTBOX:
        try:
            # A savepoint: a refused write must not leave the caller's transaction unusable.
            with transaction.atomic():
                outbox.enqueue_publish(channel, data, key)
        except DatabaseError:
            logger.exception("outbox write for %s failed", channel)
            return False
        return True
    return centrifugo.publish(channel, data, idempotency_key=key)


def group_send(group: str, event: dict[str, Any]) -> bool:
    """``group_send(group, event)`` on the default channel layer, from sync code. Returns False
    (and logs) when the layer fails (e.g. Redis unreachable, ChannelFull)."""
    try:
        async_to_sync(get_channel_layer().group_send)(group, event)
    except Exception:  # channel layer down (e.g. Redis unreachable) or ChannelFull
        logger.exception("channel layer send to %s failed", group)
        return False
    return True


def _publish_channels(room: str, data: dict[str, Any]) -> bool:
    return group_send(group_for(room), {"type": CONSUMER_EVENT, "message": data})


def selected_backends(backends: Iterable[str] | None) -> tuple[str, ...]:
    """The backends one call uses: ``backends`` (names out of ``("centrifugo", "channels")``,
    duplicates dropped) or, for None, every backend enabled by CHAT_REALTIME_BACKEND.

    Raises ValueError when ``backends`` is empty or names a backend the setting does not enable,
    TypeError when it is a single string.
    """
    enabled = enabled_backends()
    if backends is None:
        return enabled
    if isinstance(backends, str):
        raise TypeError("backends must be a collection of backend names, not a string")
    selected = tuple(dict.fromkeys(backends))
    if not selected:
        raise ValueError("backends must name at least one backend")
    not_enabled = [name for name in selected if name not in enabled]
    if not_enabled:
        raise ValueError(
            f"backend(s) {', '.join(map(repr, not_enabled))} not enabled by "
            f"CHAT_REALTIME_BACKEND={settings.CHAT_REALTIME_BACKEND!r}"
        )
    return selected


def _send_on_each(backends: Iterable[str] | None, centrifugo_send: Callable[[], bool],
                  channels_send: Callable[[], bool], what: str) -> None:
    """Run the send of every backend selected (selected_backends; all are attempted even if one
    fails). Each send returns False when it failed (and logged). Raises RealtimeError naming
    ``what`` and the failed backends."""
    failed = [backend for backend in selected_backends(backends)
              if not (centrifugo_send if backend == CENTRIFUGO else channels_send)()]
    if failed:
        raise RealtimeError(f"{what} failed on: {', '.join(failed)}")


def publish(
    channel: str, data: dict[str, Any], *, backends: Iterable[str] | None = None
) -> None:
    """Broadcast ``data`` (a JSON-serialisable dict, normally ``Message.as_dict()``) to the
    room of ``channel`` (``"rooms:<name>"``).

    ``backends``: names out of ``("centrifugo", "channels")`` to publish on; default (None) all
    backends enabled by CHAT_REALTIME_BACKEND. Every selected backend is attempted even if
    another fails.

    Centrifugo with the outbox (``settings.CHAT_OUTBOX``): the row joins the caller's transaction,
    so call this inside ``transaction.atomic()`` with the write the message comes from; it is
    published when that commits, even if Centrifugo is down now. Without the outbox: the API call
    fails over from node to node (chat.centrifugo.call_with_failover).

    Raises ValueError for a malformed channel or for ``backends`` that is empty or names a
    backend the setting does not enable (TypeError if it is a single string); RealtimeError if
    any selected backend failed (Centrifugo: CENTRIFUGO_HTTP_API_URL unset, every API attempt
    failed, or the outbox write failed; Channels: a channel-layer error).
    """
    room = room_name_from_channel(channel)
    if room is None:
        raise ValueError(f"channel must look like rooms:<name>, got {channel!r}")
    _send_on_each(backends, lambda: _publish_centrifugo(channel, data),
                  lambda: _publish_channels(room, data), f"publish to {channel}")


def relay(channel: str, data: dict[str, Any], *, source: str) -> None:
    """Cross-delivery: publish ``data``, already delivered on the ``source`` path
    (``"centrifugo"`` or ``"channels"``), on the other enabled backend(s).

    Does nothing unless ``source`` and another backend are both enabled (i.e. unless
    CHAT_REALTIME_BACKEND is ``both``). A failed publication is logged, not raised. Raises
    ValueError for an unknown ``source`` or a malformed channel.
    """
    if source not in BACKENDS:
        raise ValueError(f"source must be one of {', '.join(BACKENDS)}, got {source!r}")
    enabled = enabled_backends()
    others = tuple(name for name in enabled if name != source)
    if source not in enabled or not others:
        return
    try:
        publish(channel, data, backends=others)
    except RealtimeError:
        logger.warning(
            "message %s from the %s path not relayed to %s",
            data.get("id"), source, ", ".join(others),
        )


def notify_user(
    user: Any,
    data: dict[str, Any],
    *,
    room: Room | None = None,
    backends: Iterable[str] | None = None,
) -> None:
    """Server push to one user, wherever they are connected: the Channels article's "send to a
    single user", on every backend selected.

    Args:
        user: a saved user (its ``pk`` is used; an int pk is accepted too unless ``room`` is
            given).
        data: a JSON-serialisable dict, e.g. ``{"type": "notice", "text": "..."}``; clients
            receive it unchanged.
        room: when given, the notification concerns this room: if ``room.allows(user)`` is false
            nothing is sent and NotAllowed is raised.
        backends: as for :func:`publish` (default: every backend CHAT_REALTIME_BACKEND enables).

    Centrifugo: a publication of ``data`` into :func:`personal_channel` -- through the outbox in
    the caller's transaction with ``settings.CHAT_OUTBOX``, else the API with failover -- with a
    fresh idempotency key (shared by the retries of this call). Channels:
    ``group_send("user.<pk>", {"type": "user.notify", "data": data})``.

    Raises NotAllowed (a PermissionError; see ``room``); ValueError / TypeError for ``backends``
    as publish(); TypeError for a ``user`` without an int pk; RealtimeError if a selected
    backend failed (Centrifugo: API unset or every attempt failed, or the outbox write failed;
    Channels: a channel-layer error).
    """
    if room is not None and not room.allows(user):
        raise NotAllowed(f"room {room.name} does not admit user {getattr(user, 'pk', user)}")
    channel, group = personal_channel(user), user_group(user)
    key = f"chat-notify-{uuid.uuid4().hex}"
    _send_on_each(backends, lambda: _publish_centrifugo(channel, data, key),
                  lambda: group_send(group, {"type": USER_EVENT, "data": data}), f"notification to {channel}")
