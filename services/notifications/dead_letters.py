"""The dead-letter queue, kept and managed: the archiver that drains `notifications.dlq` into
the `dead_letters` table, and that table's SQL for the admin endpoints.

Two kinds of message reach the queue:

- those a worker dead-lettered (worker.py): it wrote their `dead_letters` row already, in the
  transaction that recorded the failed attempt, before publishing the message (its
  `message_id` is the row's id; headers `x-reason`, `x-attempts`); the archiver only acks;
- those the broker dead-lettered itself: a message that made workers fail `MAX_ATTEMPTS` times
  in a row (crashes; `x-delivery-limit`), or that someone rejected. The archiver writes their
  row, with the broker's reason, and marks their delivery `dead`; the row's id derives from the
  message id and its death (`x-death`), so a redelivered copy is not kept twice.

Replaying a dead letter puts its delivery back in the outbox (`pending`, with the message as it
was first published), so the relay publishes it again and a worker sends it, once; discarding
keeps it for the record. Both are admin actions, attributed in `resolved_by`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aio_pika.abc import AbstractChannel

from services.kit.db import DictConnection, Filters, Pool
from services.kit.rabbit_consumer import Delivery, QueueConsumer, settle
from services.notifications.topology import DEAD_LETTER_QUEUE

log = logging.getLogger(__name__)
_BROKER_DEATHS = uuid.UUID("6d1a3c64-93a8-4a53-9a55-0c0bd4c5a8f1")
_REASONS = {
    "delivery_limit": "workers failed on it too many times in a row (x-delivery-limit)",
    "rejected": "rejected by a consumer",
    "expired": "expired in its queue",
    "maxlen": "dropped by a full queue",
}


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    id: uuid.UUID
    delivery_id: uuid.UUID | None
    channel: str | None
    queue: str
    reason: str
    attempts: int
    status: str
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    order_id: uuid.UUID | None
    event_type: str | None
    payload: bytes


_COLUMNS = """
    l.id, l.delivery_id, l.channel, l.queue, l.reason, l.attempts, l.status, l.created_at,
    l.resolved_at, l.resolved_by, n.order_id, n.event_type, l.payload
"""
_FROM = """
    FROM dead_letters l
    LEFT JOIN deliveries d ON d.id = l.delivery_id
    LEFT JOIN notifications n ON n.id = d.notification_id
"""


def _row(row: Mapping[str, Any]) -> DeadLetterRow:
    return DeadLetterRow(**{**row, "payload": bytes(row["payload"])})


async def list_dead_letters(
    conn: DictConnection,
    *,
    status: str | None,
    channel: str | None,
    order_id: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[DeadLetterRow]:
    """Dead letters newest first; `after` is the (created_at, id) of the previous page's last.
    Only the filters given are in the statement (`Filters`)."""
    filters = Filters({"limit": limit})
    filters.add("l.status = %(status)s", status=status)
    filters.add("l.channel = %(channel)s", channel=channel)
    filters.add("n.order_id = %(order_id)s", order_id=order_id)
    if after is not None:
        filters.add(
            "(l.created_at, l.id) < (%(after_at)s, %(after_id)s::uuid)",
            after_at=after[0],
            after_id=after[1],
        )
    cursor = await conn.execute(
        f"""
        SELECT {_COLUMNS} {_FROM}
        WHERE {filters.where}
        ORDER BY l.created_at DESC, l.id DESC
        LIMIT %(limit)s
        """,
        filters.params,
    )
    return [_row(row) for row in await cursor.fetchall()]


async def get_for_update(conn: DictConnection, dead_letter_id: uuid.UUID) -> DeadLetterRow | None:
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} {_FROM} WHERE l.id = %s FOR UPDATE OF l",
        (dead_letter_id,),
    )
    row = await cursor.fetchone()
    return _row(row) if row else None


async def resolve(
    conn: DictConnection, dead_letter_id: uuid.UUID, status: str, by: str
) -> DeadLetterRow:
    await conn.execute(
        "UPDATE dead_letters SET status = %s, resolved_at = now(), resolved_by = %s WHERE id = %s",
        (status, by, dead_letter_id),
    )
    row = await get_for_update(conn, dead_letter_id)
    assert row is not None
    return row


async def requeue_delivery(conn: DictConnection, delivery_id: uuid.UUID, message: bytes) -> bool:
    """Put a dead delivery back in the outbox with `message` (its dead letter's: the row let its
    own copy go once the broker had it); the relay is woken at commit (migration 0004). False
    if the delivery is not dead."""
    cursor = await conn.execute(
        """
        UPDATE deliveries
        SET status = 'pending', payload = %s, reason = NULL, claimed_at = NULL,
            queued_at = NULL, updated_at = now()
        WHERE id = %s AND status = 'dead'
        RETURNING id
        """,
        (message, delivery_id),
    )
    return await cursor.fetchone() is not None


async def discard_delivery(conn: DictConnection, delivery_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE deliveries SET status = 'discarded', updated_at = now()"
        " WHERE id = %s AND status = 'dead'",
        (delivery_id,),
    )


async def counts(conn: DictConnection) -> dict[str, int]:
    cursor = await conn.execute("SELECT status, count(*) AS n FROM dead_letters GROUP BY status")
    found = {row["status"]: row["n"] for row in await cursor.fetchall()}
    return {status: found.get(status, 0) for status in ("dead", "replayed", "discarded")}


# --- the archiver ---------------------------------------------------------------------------


def _header(message: Delivery, name: str) -> Any:
    value = (message.headers or {}).get(name)
    return value.decode() if isinstance(value, bytes) else value


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def archive(conn: DictConnection, message: Delivery) -> bool:
    """Keep one message of the dead-letter queue; True if a new row was written.

    A worker's dead letter (it carries `x-reason`) has its row already, written with the
    failed attempt before the message was published here: nothing to do."""
    if _header(message, "x-reason") is not None:
        return False
    death = str(_header(message, "x-first-death-reason") or "unknown")
    queue = str(_header(message, "x-first-death-queue") or "unknown")
    deaths = _header(message, "x-death") or []
    when = deaths[0].get("time") if deaths and isinstance(deaths[0], dict) else None
    count = int(_header(message, "x-delivery-count") or 0)
    reason = _REASONS.get(death, death)
    cursor = await conn.execute(
        """
        INSERT INTO dead_letters (id, delivery_id, channel, queue, reason, attempts, payload)
        SELECT %s, (SELECT id FROM deliveries WHERE id = %s), %s, %s, %s, %s, %s
        ON CONFLICT (id) DO NOTHING
        RETURNING delivery_id
        """,
        (
            uuid.uuid5(_BROKER_DEATHS, f"{message.message_id}|{queue}|{death}|{when}|{count}"),
            _uuid(message.message_id),
            _header(message, "channel") or queue.split(".", 1)[0],
            queue,
            reason,
            max(count, 1),
            message.body,
        ),
    )
    row = await cursor.fetchone()
    if row is None:
        return False
    if row["delivery_id"] is not None:
        await conn.execute(
            "UPDATE deliveries SET status = 'dead', reason = %s, claimed_at = NULL,"
            " updated_at = now() WHERE id = %s AND status NOT IN ('sent', 'discarded')",
            (reason, row["delivery_id"]),
        )
    return True


class DeadLetterArchiver(QueueConsumer):
    """A kit runtime job: drains notifications.dlq into `dead_letters`, a batch per
    transaction, acking after commit."""

    def __init__(self, pool: Pool, url: str) -> None:
        super().__init__(
            url, DEAD_LETTER_QUEUE, name="dead-letter-archiver", prefetch=100, batch_size=100
        )
        self.pool = pool

    async def handle(self, batch: list[Delivery], channel: AbstractChannel) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            added = [message for message in batch if await archive(conn, message)]
        await settle(batch)
        for message in added:
            log.warning(
                "message dead-lettered by the broker kept",
                extra={"message_id": message.message_id},
            )
