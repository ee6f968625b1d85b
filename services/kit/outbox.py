"""The transactional outbox, its relay, and the consumer's dedupe by event id.

A service writes an event with `add_to_outbox` in the same transaction as the state change it
reports (or `outbox_row` in the statement that makes the change); `OutboxRelay` publishes
committed rows to Kafka in id order and marks them published, one relay per schema at a time.
A crash between commit and publish loses nothing (the row is still unpublished); a crash between
publish and marking republishes, which consumers absorb with `claim_events` (an insert into
`processed_events` in the consumer's own transaction). Published rows are kept for a replay
window, then purged.

The outbox tables come from `KIT_MIGRATIONS`, applied into each service's schema.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.trace import SpanKind
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from services.kit import tracing
from services.kit.arrays import BigintArray, TextArray
from services.kit.db import DictConnection, Pool
from services.kit.events import Envelope, envelope_type
from services.kit.kafka import EventProducer
from services.kit.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE
from services.kit.relay import NotifiedRelay

KIT_MIGRATIONS = Path(__file__).parent / "migrations"
NOTIFY_CHANNEL = "outbox"
PURGE_EVERY_SECONDS = 600.0
RETENTION_HOURS = 72
BACKLOG_SAMPLE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """An event as the outbox stores it, for a statement that writes it together with the
    change it reports (a data-modifying `WITH`); `add_to_outbox` writes one on its own."""

    event_id: str
    topic: str
    message_key: str
    payload: bytes
    trace_context: Jsonb | None


def outbox_row(
    topic: str, event: Envelope[Any], *, trace_context: Mapping[str, str] | None = None
) -> OutboxRow:
    """`event` as an outbox row, with `trace_context` or else the active one (the relay
    publishes it in that trace): a group's handler names each event's own."""
    trace_context = trace_context or tracing.current_headers()
    return OutboxRow(
        event_id=event.id,
        topic=topic,
        message_key=event.subject,
        payload=event.to_bytes(),
        trace_context=Jsonb(trace_context) if trace_context else None,
    )


async def add_to_outbox(conn: DictConnection, topic: str, event: Envelope[Any]) -> None:
    """Record `event` for publication when the current transaction commits, with the active
    trace context (the relay publishes it in that trace). The insert wakes the relay at commit
    (the outbox's trigger, kit migration 0003)."""
    row = outbox_row(topic, event)
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, message_key, payload, trace_context)"
        " VALUES (%s, %s, %s, %s, %s)",
        (row.event_id, row.topic, row.message_key, row.payload, row.trace_context),
    )


async def claim_events(conn: DictConnection, events: Sequence[tuple[str, str]]) -> set[str]:
    """Record each `(event_id, topic)` as processed in the current transaction, in one
    statement; the ids that were not processed before (an id twice in `events` is claimed by
    its first occurrence only, which the caller applies). RETURNING rather than a row count,
    which a pipelined transaction (the consumers') only has once the pipeline syncs."""
    cursor = await conn.execute(
        "INSERT INTO processed_events (event_id, topic)"
        " SELECT * FROM unnest(%b::uuid[], %b::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
        (TextArray(event_id for event_id, _ in events), TextArray(topic for _, topic in events)),
    )
    claimed = {row["event_id"] for row in await cursor.fetchall()}
    return {event_id for event_id, _ in events if uuid.UUID(event_id) in claimed}


def event(
    source: str, type_: str, subject: str, data: BaseModel, *, event_id: str | None = None
) -> Envelope[Any]:
    """A new envelope for `data` about `subject` (the order id), with a new id unless
    `event_id` gives one (a row written before the event was built refers to it)."""
    # Parametrised with the data's own class, so pydantic keeps (and serialises) its fields.
    of_data: type[Envelope[Any]] = envelope_type(type(data))
    if event_id is None:
        return of_data(source=source, type=type_, subject=subject, data=data)
    return of_data(id=event_id, source=source, type=type_, subject=subject, data=data)


_MARK = "UPDATE outbox SET published_at = now() WHERE id = ANY(%(published)b::bigint[])"
"""Mark the rows a round published (Kafka acknowledged them)."""

_NEXT_ROWS = f"""
    WITH marked AS ({_MARK})
    SELECT id, topic, message_key, payload, trace_context FROM outbox
    WHERE published_at IS NULL AND id <> ALL(%(published)b::bigint[])
    ORDER BY id LIMIT %(limit)s
"""  # noqa: S608 - a fixed statement; every value is a parameter
"""A round's one statement: mark the rows the last round published, and read the next ones
(the statement's snapshot still shows the rows it marks as unpublished, hence the `<> ALL`)."""


class OutboxRelay(NotifiedRelay):
    """Publishes outbox rows to Kafka in id order, marking them published (the loop and the
    lead: kit/relay.py). One relay per schema leads, so each key's events reach Kafka in commit
    order even with several replicas.

    A round is one statement: it marks the rows the previous round published (Kafka
    acknowledged them) and reads the next ones (`_NEXT_ROWS`). The last round's rows are marked
    by the next round, which the poll starts within `poll_interval` if no NOTIFY does, or when
    the relay stops (`close`). A relay that dies first, or whose session ends, leaves them to be
    published again: a duplicate its consumers absorb, never a loss. An outbox row changes only
    when it is marked, so marking it late marks nothing it should not.
    """

    def __init__(
        self,
        pool: Pool,
        producer: EventProducer,
        conninfo: str,
        schema: str,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.5,
    ) -> None:
        super().__init__(
            conninfo=conninfo,
            schema=schema,
            channel=NOTIFY_CHANNEL,
            batch_size=batch_size,
            poll_interval=poll_interval,
        )
        self.pool = pool
        self.producer = producer
        self._sample_due = 0.0

    async def publish_batch(self) -> int:
        """Publish up to one batch of unpublished rows; returns how many were published (none
        while another relay leads)."""
        if time.monotonic() >= self._sample_due:
            self._sample_due = time.monotonic() + BACKLOG_SAMPLE_SECONDS
            await sample_backlog(self.pool, self.producer.service)
        session = await self.leading_session()
        if session is None:
            return 0
        cursor = await session.execute(
            _NEXT_ROWS,
            {"published": BigintArray(self.take_unmarked(session)), "limit": self.batch_size},
        )
        rows = await cursor.fetchall()
        if not rows:
            return 0
        await self._publish(rows)
        self.leave_unmarked(session, [row["id"] for row in rows])
        return len(rows)

    async def mark(self, session: DictConnection, keys: list[Any]) -> None:
        await session.execute(_MARK, {"published": BigintArray(keys)})

    async def _publish(self, rows: list[dict[str, Any]]) -> None:
        """Send every row, each in a PRODUCER span continuing the trace its row stored."""
        service = self.producer.service
        spans = [
            tracing.start_span(
                service,
                f"{row['topic']} publish",
                kind=SpanKind.PRODUCER,
                parent=row["trace_context"],
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "send",
                    "messaging.destination.name": row["topic"],
                    "messaging.kafka.message.key": row["message_key"],
                },
            )
            for row in rows
        ]
        error: BaseException | None = None
        try:
            await asyncio.gather(
                *(
                    self.producer.publish_nowait(
                        row["topic"],
                        row["message_key"],
                        bytes(row["payload"]),
                        tracing.headers_of(span) or None,
                    )
                    for row, span in zip(rows, spans, strict=True)
                )
            )
        except BaseException as exc:
            error = exc
            raise
        finally:
            for span in spans:
                tracing.end_span(span, error)


async def sample_backlog(pool: Pool, service: str) -> None:
    """Set the outbox gauges: rows waiting and the age of the oldest. Every replica's relay
    samples (before the publishing lock), so a replica that never wins the lock still reports,
    and a broker outage, which fails every round after this, still shows the backlog growing.
    The leader's last round counts until the next round marks it (at most `poll_interval`)."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*) AS waiting, coalesce(extract(epoch FROM now() - ("
            " SELECT created_at FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 1"
            ")), 0)::float8 AS age FROM outbox WHERE published_at IS NULL"
        )
        row = await cursor.fetchone()
    assert row is not None
    OUTBOX_BACKLOG.labels(service).set(row["waiting"])
    OUTBOX_OLDEST_AGE.labels(service).set(max(row["age"], 0.0))


async def purge_outbox(pool: Pool, retention_hours: int = RETENTION_HOURS) -> int:
    """Delete published outbox rows older than the replay window, and dedupe records four
    times older (a redelivery older than that is not expected); returns the rows deleted.
    A periodic job of every event-driven service (kit/backbone.py)."""
    async with pool.connection() as conn:
        outbox = await conn.execute(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(hours => %s)",
            (retention_hours,),
        )
        processed = await conn.execute(
            "DELETE FROM processed_events WHERE processed_at < now() - make_interval(hours => %s)",
            (retention_hours * 4,),
        )
    return outbox.rowcount + processed.rowcount
