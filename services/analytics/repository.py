"""All the SQL of the analytics service. Functions take a connection and return typed rows.

The tables (migrations/0001_projection.sql): `event_log` (every consumed event, once) and
`order_facts` (one row per order: its newest status by version, and its creation's facts).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from services.analytics.domain import REVENUE_STATUSES, Granularity, Period
from services.kit.db import DictConnection, Filters
from services.kit.models import row_fields

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


_KEEP = """
    WITH kept AS (
        INSERT INTO event_log (event_id, topic, type, source, order_id, user_id, version,
                               occurred_at, data)
        VALUES (%(event_id)s, %(topic)s, %(type)s, %(source)s, %(order_id)s, %(user_id)s,
                %(version)s, %(occurred_at)s, %(data)s)
        ON CONFLICT (event_id) DO NOTHING
        RETURNING 1
    )
"""

# The creation's facts; its status only if no newer version was seen first.
_CREATION = """
    , facts AS (
        INSERT INTO order_facts (order_id, user_id, status, version, total, currency,
                                 item_count, created_at)
        SELECT %(order_id)s, %(user_id)s, 'CREATED', %(version)s, %(total)s, %(currency)s,
               %(item_count)s, %(created_at)s
        FROM kept
        ON CONFLICT (order_id) DO UPDATE
        SET total = excluded.total,
            currency = excluded.currency,
            item_count = excluded.item_count,
            created_at = excluded.created_at,
            status = CASE WHEN excluded.version > order_facts.version
                          THEN excluded.status ELSE order_facts.status END,
            version = GREATEST(order_facts.version, excluded.version),
            updated_at = now()
    )
"""

# A status at an order version: applied only if newer than the one known (so a late event
# changes nothing); a confirmation's time is kept whatever its order.
_STATUS = """
    , facts AS (
        INSERT INTO order_facts (order_id, user_id, status, version, total, currency,
                                 confirmed_at)
        SELECT %(order_id)s, %(user_id)s, %(status)s, %(version)s, %(total)s, %(currency)s,
               CASE WHEN %(status)s = 'CONFIRMED' THEN %(at)s::timestamptz END
        FROM kept
        ON CONFLICT (order_id) DO UPDATE
        SET status = CASE WHEN excluded.version > order_facts.version
                          THEN excluded.status ELSE order_facts.status END,
            version = GREATEST(order_facts.version, excluded.version),
            total = COALESCE(order_facts.total, excluded.total),
            currency = COALESCE(order_facts.currency, excluded.currency),
            confirmed_at = COALESCE(order_facts.confirmed_at, excluded.confirmed_at),
            updated_at = now()
    )
"""


async def project(
    conn: DictConnection, entry: NewLogEntry, change: Creation | StatusAt | None
) -> bool:
    """Keep the event and, if it was not kept before, apply its `change` to the row of the
    entry's order (by its user, at its version), in one statement; False when it was kept
    before (then it changed nothing)."""
    query = _KEEP
    params = {**row_fields(entry), "data": Jsonb(entry.data)}
    if isinstance(change, Creation):
        query += _CREATION
        params.update(row_fields(change))
    elif isinstance(change, StatusAt):
        query += _STATUS
        params.update(row_fields(change))
    query += "SELECT count(*) AS kept FROM kept"
    cursor = await conn.execute(query, params)
    row = await cursor.fetchone()
    return row is not None and row["kept"] > 0


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
