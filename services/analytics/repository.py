"""All the SQL of the analytics service. Functions take a connection and return typed rows.

The tables (migrations/0001_projection.sql): `event_log` (every consumed event, once) and
`order_facts` (one row per order: its newest status by version, and its creation's facts).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from services.analytics.domain import REVENUE_STATUSES, Granularity, Period
from services.kit.db import DictConnection, Filters
from services.kit.models import row_fields
from services.kit.sql import json_rows

SCHEMA = "analytics"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True, slots=True)
class NewLogEntry:
    """A consumed event, as `event_log` keeps it."""

    event_id: uuid.UUID
    topic: str
    type: str
    source: str
    order_id: str
    user_id: str | None
    version: int | None
    occurred_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LoggedEvent(NewLogEntry):
    """A kept event, with the time it was kept."""

    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class OrdersInBucket:
    period: date
    orders: int
    confirmed: int
    failed: int
    cancelled: int


@dataclass(frozen=True, slots=True)
class RevenueInBucket:
    period: date
    currency: str
    revenue: Decimal
    orders: int


@dataclass(frozen=True, slots=True)
class StatusCount:
    status: str
    orders: int


@dataclass(frozen=True, slots=True)
class Totals:
    orders: int
    pending: int
    revenue_orders: int
    failed: int
    cancelled: int


# --- the projection ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Creation:
    """An order's creation facts (`order.created`), at the event's order version."""

    total: Decimal
    currency: str
    item_count: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StatusAt:
    """An order's status at the event's order version, at a time; a status change carries the
    order's total."""

    status: str
    at: datetime
    total: Decimal | None = None
    currency: str | None = None


# Every event of the group once (`seq`: its place in the group; a second copy is kept
# nothing for), then each order's row moved by the events that were new, merged per order
# as applying them one after the other would: the status of the newest version (the first
# of equal ones) if newer than the row's; the creation's facts whenever they arrive (its
# total and currency over a status change's); a status change's total and currency only
# where none is known; the first confirmation's time kept whatever its order. One row per
# order, because one statement cannot upsert a row twice.
_PROJECT = """
    WITH event AS (
        SELECT *
        FROM jsonb_to_recordset(%(events)s::jsonb) AS e (
            seq integer, event_id uuid, topic text, type text, source text, order_id text,
            user_id text, version integer, occurred_at timestamptz, data jsonb,
            status text, at timestamptz, total numeric, currency text, item_count integer,
            created_at timestamptz)
    ), kept AS (
        INSERT INTO event_log (event_id, topic, type, source, order_id, user_id, version,
                               occurred_at, data)
        SELECT DISTINCT ON (event_id)
               event_id, topic, type, source, order_id, user_id, version, occurred_at, data
        FROM event
        ORDER BY event_id, seq
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id
    ), change AS (
        SELECT DISTINCT ON (e.event_id) e.*
        FROM event e JOIN kept USING (event_id)
        WHERE e.status IS NOT NULL
        ORDER BY e.event_id, e.seq
    ), merged AS (
        SELECT order_id,
               (array_agg(user_id ORDER BY seq))[1] AS user_id,
               (array_agg(status ORDER BY version DESC, seq))[1] AS status,
               max(version) AS version,
               coalesce((array_agg(total ORDER BY seq) FILTER (WHERE created_at IS NOT NULL))[1],
                        (array_agg(total ORDER BY seq) FILTER (WHERE total IS NOT NULL))[1])
                   AS total,
               coalesce((array_agg(currency ORDER BY seq)
                             FILTER (WHERE created_at IS NOT NULL))[1],
                        (array_agg(currency ORDER BY seq) FILTER (WHERE currency IS NOT NULL))[1])
                   AS currency,
               (array_agg(item_count ORDER BY seq) FILTER (WHERE created_at IS NOT NULL))[1]
                   AS item_count,
               (array_agg(created_at ORDER BY seq) FILTER (WHERE created_at IS NOT NULL))[1]
                   AS created_at,
               (array_agg(at ORDER BY seq) FILTER (WHERE status = 'CONFIRMED'))[1]
                   AS confirmed_at
        FROM change
        GROUP BY order_id
    ), facts AS (
        INSERT INTO order_facts (order_id, user_id, status, version, total, currency,
                                 item_count, created_at, confirmed_at)
        SELECT order_id, user_id, status, version, total, currency, item_count, created_at,
               confirmed_at
        FROM merged
        ON CONFLICT (order_id) DO UPDATE
        SET status = CASE WHEN excluded.version > order_facts.version
                          THEN excluded.status ELSE order_facts.status END,
            version = GREATEST(order_facts.version, excluded.version),
            total = CASE WHEN excluded.created_at IS NOT NULL THEN excluded.total
                         ELSE COALESCE(order_facts.total, excluded.total) END,
            currency = CASE WHEN excluded.created_at IS NOT NULL THEN excluded.currency
                            ELSE COALESCE(order_facts.currency, excluded.currency) END,
            item_count = COALESCE(excluded.item_count, order_facts.item_count),
            created_at = COALESCE(excluded.created_at, order_facts.created_at),
            confirmed_at = COALESCE(order_facts.confirmed_at, excluded.confirmed_at),
            updated_at = now()
    )
    SELECT event_id FROM kept
"""


async def project(
    conn: DictConnection, entries: Sequence[tuple[NewLogEntry, Creation | StatusAt | None]]
) -> set[uuid.UUID]:
    """Keep the events, in their order, and apply the `change` of each one not kept before to
    the row of its order (by its user, at its version), all in one statement; the ids of the
    events it kept (an event kept before changed nothing)."""
    records = []
    for seq, (entry, change) in enumerate(entries):
        record = {**row_fields(entry), "seq": seq}
        if isinstance(change, Creation):
            record.update(row_fields(change), status="CREATED")
        elif isinstance(change, StatusAt):
            record.update(row_fields(change))
        records.append(record)
    cursor = await conn.execute(_PROJECT, {"events": json_rows(records)})
    return {row["event_id"] for row in await cursor.fetchall()}


async def clear(conn: DictConnection) -> None:
    """Empty the projection and its dedupe records, before a replay from the start."""
    await conn.execute("TRUNCATE event_log, order_facts, processed_events")


# --- reports -------------------------------------------------------------------------------

_TRUNC = {Granularity.DAY: "day", Granularity.WEEK: "week", Granularity.MONTH: "month"}


async def orders_per_bucket(conn: DictConnection, period: Period) -> list[OrdersInBucket]:
    cursor = await conn.execute(
        """
        SELECT date_trunc(%(unit)s, created_at AT TIME ZONE 'UTC')::date AS period,
               count(*) AS orders,
               count(*) FILTER (WHERE status = ANY(%(revenue)s)) AS confirmed,
               count(*) FILTER (WHERE status = 'FAILED') AS failed,
               count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled
        FROM order_facts
        WHERE created_at >= %(since)s AND created_at < %(until)s
        GROUP BY 1
        ORDER BY 1
        """,
        _range(period),
    )
    return [OrdersInBucket(**row) for row in await cursor.fetchall()]


async def revenue_per_bucket(conn: DictConnection, period: Period) -> list[RevenueInBucket]:
    cursor = await conn.execute(
        """
        SELECT date_trunc(%(unit)s, created_at AT TIME ZONE 'UTC')::date AS period,
               currency,
               sum(total) AS revenue,
               count(*) AS orders
        FROM order_facts
        WHERE created_at >= %(since)s AND created_at < %(until)s
          AND status = ANY(%(revenue)s)
        GROUP BY 1, 2
        ORDER BY 1, 2
        """,
        _range(period),
    )
    return [RevenueInBucket(**row) for row in await cursor.fetchall()]


async def status_counts(conn: DictConnection, period: Period) -> list[StatusCount]:
    cursor = await conn.execute(
        """
        SELECT status, count(*) AS orders
        FROM order_facts
        WHERE created_at >= %(since)s AND created_at < %(until)s
        GROUP BY status
        ORDER BY status
        """,
        _range(period),
    )
    return [StatusCount(**row) for row in await cursor.fetchall()]


async def totals(conn: DictConnection, period: Period) -> Totals:
    cursor = await conn.execute(
        """
        SELECT count(*) AS orders,
               count(*) FILTER (WHERE status = 'CREATED') AS pending,
               count(*) FILTER (WHERE status = ANY(%(revenue)s)) AS revenue_orders,
               count(*) FILTER (WHERE status = 'FAILED') AS failed,
               count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled
        FROM order_facts
        WHERE created_at >= %(since)s AND created_at < %(until)s
        """,
        _range(period),
    )
    row = await cursor.fetchone()
    assert row is not None
    return Totals(**row)


async def last_event_at(conn: DictConnection) -> datetime | None:
    """When the newest event the projection holds happened."""
    cursor = await conn.execute("SELECT max(occurred_at) AS at FROM event_log")
    row = await cursor.fetchone()
    return row["at"] if row else None


def _range(period: Period) -> dict[str, Any]:
    return {
        "unit": _TRUNC[period.granularity],
        "since": period.since,
        "until": period.until,
        "revenue": list(REVENUE_STATUSES),
    }


# --- the event log -------------------------------------------------------------------------


async def list_events(
    conn: DictConnection,
    *,
    order_id: str | None,
    types: list[str] | None,
    since: datetime | None,
    until: datetime | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[LoggedEvent]:
    """Events newest first; `after` is the (occurred_at, event_id) of the previous page's last.

    Only the filters given are in the statement (`Filters`), so a lookup by order uses the
    order's index."""
    filters = Filters({"limit": limit})
    filters.add("order_id = %(order_id)s", order_id=order_id)
    filters.add("type = ANY(%(types)s)", types=types)
    filters.add("occurred_at >= %(since)s", since=since)
    filters.add("occurred_at < %(until)s", until=until)
    if after is not None:
        filters.add(
            "(occurred_at, event_id) < (%(after_at)s, %(after_id)s::uuid)",
            after_at=after[0],
            after_id=after[1],
        )
    cursor = await conn.execute(
        f"""
        SELECT event_id, topic, type, source, order_id, user_id, version, occurred_at, data,
               recorded_at
        FROM event_log
        WHERE {filters.where}
        ORDER BY occurred_at DESC, event_id DESC
        LIMIT %(limit)s
        """,  # noqa: S608 - the conditions are fixed strings; every value is a parameter
        filters.params,
    )
    return [LoggedEvent(**row) for row in await cursor.fetchall()]
