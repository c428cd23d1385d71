"""The outbox: server API commands (publications, broadcasts) written into the database in the transaction that saves the message
they announce, and published by Centrifugo's PostgreSQL async consumer (``consumers[]`` of type
``postgresql``, https://centrifugal.dev/docs/server/consumers#postgresql-outbox-consumer).

Why: a message committed while every Centrifugo node is down (or the API call fails after the
commit) would otherwise never be broadcast. With the outbox, the publication commits or rolls back
with the message, and Centrifugo publishes it whenever it can.

- Order: rows of one partition are published in ``id`` order, one consumer at a time (an advisory
  lock per partition across the nodes). The partition is derived from the channel
  (:func:`partition_for`), so a room's messages keep their order.
- At least once: the consumer sends a command, then deletes the rows it sent; a crash in between
  sends again. Every payload carries an ``idempotency_key``, so Centrifugo drops the repeat within
  its ``idempotent_result_ttl`` (5 minutes by default).
- Latency: ``pg_notify(<CHAT_OUTBOX_NOTIFY_CHANNEL>, <partition>)`` in the same transaction wakes
  the consumers (delivered at commit); without it they poll every 300 ms.

Any server API method can be queued (:func:`enqueue`): the consumer executes a row's ``method``
with its ``payload`` as that method's request (https://centrifugal.dev/docs/server/server_api):
``publish`` for room messages and personal notifications (chat.realtime), ``broadcast`` for room
activity (chat.activity).

Used when ``settings.CHAT_OUTBOX`` is on (default: the database is PostgreSQL). With SQLite,
chat.realtime.publish keeps the direct API call.
"""
from __future__ import annotations

import zlib
from typing import Any

from django.conf import settings
from django.db import connection

from .models import Outbox


def partition_for(channel: str, partitions: int | None = None) -> int:
    """The outbox partition of ``channel``: CRC-32 of its UTF-8 bytes modulo ``partitions``
    (default ``settings.CHAT_OUTBOX_PARTITIONS``, which must equal the consumer's
    ``num_partitions``). Stable across processes and releases, so one room is one partition."""
    count = partitions or settings.CHAT_OUTBOX_PARTITIONS
    return zlib.crc32(channel.encode("utf-8")) % count


def enqueue(method: str, payload: dict[str, Any], partition_key: str) -> Outbox:
    """Write the server API command ``method`` with request ``payload`` into the outbox, in the
    current transaction (call it inside ``transaction.atomic()`` with the write it announces), and
    notify the consumers (PostgreSQL ``pg_notify``, sent at commit).

    Args:
        method: a Centrifugo server API method name, e.g. ``"publish"`` or ``"broadcast"``.
        payload: that method's request (JSON-serialisable dict), with an ``idempotency_key``
            so that a repeat after a consumer crash is dropped.
        partition_key: what the partition is derived from (:func:`partition_for`); commands with
            the same key are sent in the order they were written. The room's channel for
            everything a room's message causes.

    Returns the saved Outbox row. Raises django.db.DatabaseError when the database refuses.
    """
    partition = partition_for(partition_key)
    row = Outbox.objects.create(method=method, payload=payload, partition=partition)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [settings.CHAT_OUTBOX_NOTIFY_CHANNEL, str(partition)])
    return row


def enqueue_publish(channel: str, data: dict[str, Any], idempotency_key: str) -> Outbox:
    """Write a ``publish`` command for ``channel`` with ``data`` into the outbox (:func:`enqueue`,
    partition of ``channel``), in the current transaction.

    Args:
        channel: e.g. ``"rooms:lobby"`` or ``"personal:#5"``.
        data: the publication data (JSON-serialisable dict).
        idempotency_key: the same key for every attempt to publish this one thing.

    Returns the saved Outbox row. Raises django.db.DatabaseError when the database refuses.
    """
    return enqueue(
        "publish",
        {"channel": channel, "data": data, "idempotency_key": idempotency_key},
        partition_key=channel,
    )
