"""The outbox: publications written into the database in the transaction that saves the message
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


def enqueue_publish(channel: str, data: dict[str, Any], idempotency_key: str) -> Outbox:
    """Write a ``publish`` command for ``channel`` with ``data`` into the outbox, in the current
    transaction (call it inside ``transaction.atomic()`` with the write it announces), and notify
    the consumers (PostgreSQL ``pg_notify``, sent at commit).

    Args:
        channel: e.g. ``"rooms:lobby"``.
        data: the publication data (JSON-serialisable dict).
        idempotency_key: the same key for every attempt to publish this one thing.

    Returns the saved Outbox row. Raises django.db.DatabaseError when the database refuses.
    """
    partition = partition_for(channel)
    row = Outbox.objects.create(
        method="publish",
        payload={"channel": channel, "data": data, "idempotency_key": idempotency_key},
        partition=partition,
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [settings.CHAT_OUTBOX_NOTIFY_CHANNEL, str(partition)])
    return row
