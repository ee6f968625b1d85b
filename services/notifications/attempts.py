"""The SQL of the channel workers: claiming deliveries, recording attempts and dead letters.

A worker works in batches: one statement claims the batch's deliveries, one records what
happened to them; each commits on its own (the worker runs them in autocommit: no BEGIN or
COMMIT round trips). Statuses of a delivery as the workers move it (migrations/0002):

    queued/pending/retrying --claim--> sending --> sent | retrying | dead

A claim takes a delivery that is waiting, or one whose claim is older than the claimer's
timeout (its worker died mid-send), and drops the row's copy of the message, which the broker
has (as the relay's mark does for the deliveries it marks `queued`: repository.py). A delivery
already `sent` is a duplicate; one `sending` under a fresh claim is held by another worker;
`dead`, `discarded` or `skipped` ones are over.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from services.kit.arrays import (
    ByteaArray,
    Float8Array,
    IntArray,
    TextArray,
    UuidArray,
)
from services.kit.db import DictConnection


@dataclass(frozen=True, slots=True)
class Claim:
    claimed: set[uuid.UUID]
    """Deliveries this worker now holds: send them."""
    statuses: dict[uuid.UUID, str]
    """The status of each delivery not claimed (a missing id has none)."""


async def claim(
    conn: DictConnection, delivery_ids: Sequence[uuid.UUID], claim_timeout: float
) -> Claim:
    cursor = await conn.execute(
        """
        UPDATE deliveries
        SET status = 'sending', claimed_at = now(), attempts = attempts + 1, updated_at = now(),
            payload = NULL
        WHERE id = ANY(%(ids)s)
          AND (status IN ('pending', 'queued', 'retrying')
               OR (status = 'sending'
                   AND claimed_at < now() - make_interval(secs => %(timeout)s)))
        RETURNING id
        """,
        {"ids": list(delivery_ids), "timeout": claim_timeout},
    )
    claimed = {row["id"] for row in await cursor.fetchall()}
    others = [d for d in delivery_ids if d not in claimed]
    statuses: dict[uuid.UUID, str] = {}
    if others:
        cursor = await conn.execute(
            "SELECT id, status FROM deliveries WHERE id = ANY(%s)", (others,)
        )
        statuses = {row["id"]: row["status"] for row in await cursor.fetchall()}
    return Claim(claimed, statuses)


@dataclass(frozen=True, slots=True)
class Attempt:
    delivery_id: uuid.UUID
    notification_id: uuid.UUID
    channel: str
    attempt: int
    outcome: str
    """sent, retry, failed or duplicate."""
    provider_response: str | None
    duration_ms: float | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: uuid.UUID
    delivery_id: uuid.UUID | None
    channel: str | None
    queue: str
    reason: str
    attempts: int
    payload: bytes


_STATUS_OF_OUTCOME = {"sent": "sent", "retry": "retrying", "failed": "dead"}


async def record(
    conn: DictConnection, attempts: Sequence[Attempt], dead_letters: Sequence[DeadLetter]
) -> None:
    """Record a batch's attempts, move their deliveries on, and keep its dead letters, in one
    statement (each list travels as arrays, one per column), so it commits as one without a
    transaction of its own."""
    moved = [a for a in attempts if a.outcome in _STATUS_OF_OUTCOME]
    await conn.execute(
        """
        WITH attempted AS (
            INSERT INTO delivery_attempts (delivery_id, notification_id, channel, attempt,
                                           outcome, provider_response, duration_ms)
            SELECT * FROM unnest(%(a_delivery)b::uuid[], %(a_notification)b::uuid[],
                                 %(a_channel)b::text[], %(a_attempt)b::int[],
                                 %(a_outcome)b::text[], %(a_response)b::text[],
                                 %(a_duration)b::float8[])
        ), dead AS (
            INSERT INTO dead_letters (id, delivery_id, channel, queue, reason, attempts, payload)
            SELECT * FROM unnest(%(d_id)b::uuid[], %(d_delivery)b::uuid[], %(d_channel)b::text[],
                                 %(d_queue)b::text[], %(d_reason)b::text[],
                                 %(d_attempts)b::int[], %(d_payload)b::bytea[])
            ON CONFLICT (id) DO NOTHING
        )
        UPDATE deliveries d
        SET status = m.status,
            reason = CASE WHEN m.status = 'sent' THEN NULL ELSE m.response END,
            sent_at = CASE WHEN m.status = 'sent' THEN now() ELSE d.sent_at END,
            claimed_at = NULL,
            updated_at = now()
        FROM unnest(%(m_id)b::uuid[], %(m_status)b::text[], %(m_response)b::text[])
            AS m(id, status, response)
        WHERE d.id = m.id
        """,
        {
            "a_delivery": UuidArray(a.delivery_id for a in attempts),
            "a_notification": UuidArray(a.notification_id for a in attempts),
            "a_channel": TextArray(a.channel for a in attempts),
            "a_attempt": IntArray(a.attempt for a in attempts),
            "a_outcome": TextArray(a.outcome for a in attempts),
            "a_response": TextArray(a.provider_response for a in attempts),
            "a_duration": Float8Array(a.duration_ms for a in attempts),
            "d_id": UuidArray(d.id for d in dead_letters),
            "d_delivery": UuidArray(d.delivery_id for d in dead_letters),
            "d_channel": TextArray(d.channel for d in dead_letters),
            "d_queue": TextArray(d.queue for d in dead_letters),
            "d_reason": TextArray(d.reason for d in dead_letters),
            "d_attempts": IntArray(d.attempts for d in dead_letters),
            "d_payload": ByteaArray(d.payload for d in dead_letters),
            "m_id": UuidArray(a.delivery_id for a in moved),
            "m_status": TextArray(_STATUS_OF_OUTCOME[a.outcome] for a in moved),
            "m_response": TextArray(a.provider_response for a in moved),
        },
    )
