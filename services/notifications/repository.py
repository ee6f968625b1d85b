"""All the SQL of the notifications service. Functions take a connection and return typed rows.

The tables (migrations/0001_notifications.sql): `preferences`, `order_versions` (the newest
order version notified, for the stale rule), `notifications` (the in-app center) and
`deliveries` (one per notification and channel; the pending ones are the RabbitMQ outbox).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from services.kit.db import DictConnection
from services.notifications.domain import Channel, EventType, Preferences

SCHEMA = "notifications"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True, slots=True)
class NotificationRow:
    id: uuid.UUID
    user_id: str
    order_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    order_version: int
    title: str
    body: str
    data: dict[str, Any]
    read_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: uuid.UUID
    notification_id: uuid.UUID
    channel: str
    status: str
    recipient: str | None
    reason: str | None
    queue: str
    attempts: int
    created_at: datetime
    queued_at: datetime | None
    sent_at: datetime | None
    attempt_log: list[AttemptRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AttemptRow:
    delivery_id: uuid.UUID
    attempt: int
    outcome: str
    provider_response: str | None
    duration_ms: float | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    id: uuid.UUID
    channel: str
    event_type: str
    queue: str
    payload: bytes
    updated_at: datetime
    """When the row last changed, as read: it is marked only if unchanged since."""
    trace_context: dict[str, str] | None = None
    """The trace the delivery was recorded in (services/kit/tracing.py), if any."""


@dataclass(frozen=True, slots=True)
class NewDelivery:
    id: uuid.UUID
    channel: Channel
    queue: str
    recipient: str | None
    payload: bytes | None
    """None for a skipped delivery (nothing to publish); `reason` says why."""
    reason: str | None = None


_NOTIFICATION_COLUMNS = (
    "id, user_id, order_id, event_id, event_type, order_version, title, body, data,"
    " read_at, created_at"
)
_DELIVERY_COLUMNS = (
    "id, notification_id, channel, status, recipient, reason, queue, attempts, created_at,"
    " queued_at, sent_at"
)


# --- preferences -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreferencesRow:
    preferences: Preferences
    updated_at: datetime


async def get_preferences(conn: DictConnection, user_id: str) -> PreferencesRow | None:
    """What the user saved, and when; None if they never did."""
    cursor = await conn.execute(
        "SELECT channels, email, phone, updated_at FROM preferences WHERE user_id = %s",
        (user_id,),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    return PreferencesRow(_preferences(row), row["updated_at"])


async def put_preferences(conn: DictConnection, user_id: str, preferences: Preferences) -> datetime:
    """Replace the user's preferences; returns when."""
    channels = {
        str(event): {str(channel): on for channel, on in wanted.items()}
        for event, wanted in preferences.channels.items()
    }
    cursor = await conn.execute(
        """
        INSERT INTO preferences (user_id, channels, email, phone) VALUES (%s, %s, %s, %s)
        ON CONFLICT (user_id) DO UPDATE
        SET channels = excluded.channels, email = excluded.email, phone = excluded.phone,
            updated_at = now()
        RETURNING updated_at
        """,
        (user_id, Jsonb(channels), preferences.email, preferences.phone),
    )
    row = await cursor.fetchone()
    assert row is not None
    updated_at: datetime = row["updated_at"]
    return updated_at


def _preferences(row: Mapping[str, Any]) -> Preferences:
    return Preferences(channels=_matrix(row["channels"]), email=row["email"], phone=row["phone"])


def _matrix(stored: Mapping[str, Mapping[str, bool]]) -> dict[EventType, dict[Channel, bool]]:
    return {
        EventType(event): {Channel(channel): bool(on) for channel, on in wanted.items()}
        for event, wanted in stored.items()
    }


# --- the stale rule ----------------------------------------------------------------------


async def order_version(conn: DictConnection, order_id: uuid.UUID) -> int | None:
    cursor = await conn.execute(
        "SELECT version FROM order_versions WHERE order_id = %s", (order_id,)
    )
    row = await cursor.fetchone()
    return row["version"] if row else None


# --- notifications -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recorded:
    """What `record_notification` found."""

    current: bool
    """The user's stored preferences are the ones the deliveries were made from."""
    newer: bool
    """The event's order version was newer than the newest notified: all of it is recorded."""


async def record_notification(
    conn: DictConnection,
    notification: NotificationRow,
    deliveries: Sequence[NewDelivery],
    *,
    preferences_saved_at: datetime | None,
    trace_context: Mapping[str, str] | None = None,
) -> Recorded:
    """Apply an event's notification in one statement, which commits by itself on an
    autocommit connection: if the user's stored preferences are the ones saved at
    `preferences_saved_at` (None: the user never saved any) and the notification's order
    version is newer than the newest notified for its order, record that version (the stale
    rule; the upsert's row lock orders concurrent events of one order), the (unread)
    notification and its deliveries; otherwise write nothing. `trace_context` (the consumed
    event's trace) goes with the deliveries to publish."""
    traced = Jsonb(dict(trace_context)) if trace_context else None
    # The deliveries travel as arrays, one per column; their foreign key is checked at the end
    # of the statement, when the notification's row is there.
    cursor = await conn.execute(
        """
        WITH current AS (
            SELECT WHERE (SELECT updated_at FROM preferences WHERE user_id = %(user)s)
                         IS NOT DISTINCT FROM %(saved_at)s::timestamptz
        ), newer AS (
            INSERT INTO order_versions (order_id, version)
            SELECT %(order)s, %(version)s FROM current
            ON CONFLICT (order_id) DO UPDATE SET version = excluded.version, updated_at = now()
            WHERE order_versions.version < excluded.version
            RETURNING 1
        ), notification AS (
            INSERT INTO notifications
                (id, user_id, order_id, event_id, event_type, order_version, title, body, data,
                 created_at)
            SELECT %(id)s, %(user)s, %(order)s, %(event)s, %(event_type)s, %(version)s,
                   %(title)s, %(body)s, %(data)s, %(created_at)s
            FROM newer
        ), delivery AS (
            INSERT INTO deliveries
                (id, notification_id, channel, status, recipient, reason, queue, payload,
                 trace_context, created_at)
            SELECT d.id, %(id)s, d.channel, d.status, d.recipient, d.reason, d.queue, d.payload,
                   CASE WHEN d.payload IS NOT NULL THEN %(trace)s::jsonb END, %(created_at)s
            FROM newer, unnest(%(ids)s::uuid[], %(channels)s::text[], %(statuses)s::text[],
                               %(recipients)s::text[], %(reasons)s::text[], %(queues)s::text[],
                               %(payloads)s::bytea[])
                AS d (id, channel, status, recipient, reason, queue, payload)
        )
        SELECT EXISTS (SELECT FROM current) AS current, EXISTS (SELECT FROM newer) AS newer
        """,
        {
            "saved_at": preferences_saved_at,
            "id": notification.id,
            "user": notification.user_id,
            "order": notification.order_id,
            "event": notification.event_id,
            "event_type": notification.event_type,
            "version": notification.order_version,
            "title": notification.title,
            "body": notification.body,
            "data": Jsonb(notification.data),
            "created_at": notification.created_at,
            "trace": traced,
            "ids": [d.id for d in deliveries],
            "channels": [str(d.channel) for d in deliveries],
            "statuses": ["pending" if d.payload is not None else "skipped" for d in deliveries],
            "recipients": [d.recipient for d in deliveries],
            "reasons": [d.reason for d in deliveries],
            "queues": [d.queue for d in deliveries],
            "payloads": [d.payload for d in deliveries],
        },
    )
    row = await cursor.fetchone()
    assert row is not None
    return Recorded(current=row["current"], newer=row["newer"])


async def list_notifications(
    conn: DictConnection,
    user_id: str,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[NotificationRow]:
    """One page of the user's notifications, newest first, strictly after `after`."""
    params: list[Any] = [user_id]
    clause = ""
    if after is not None:
        clause = "AND (created_at, id) < (%s, %s)"
        params += [after[0], after[1]]
    cursor = await conn.execute(
        f"""
        SELECT {_NOTIFICATION_COLUMNS} FROM notifications
        WHERE user_id = %s {clause}
        ORDER BY created_at DESC, id DESC LIMIT %s
        """,  # noqa: S608 - fixed strings; every value is a parameter
        [*params, limit],
    )
    return [NotificationRow(**row) for row in await cursor.fetchall()]


UNREAD_COUNT_LIMIT = 100
"""Unread notifications are counted up to this many (a badge shows "99+"), so the count, read
on every push of the badge, costs the same for a user who never reads as for one who does."""


async def unread_count(conn: DictConnection, user_id: str) -> int:
    """The user's unread notifications, at most `UNREAD_COUNT_LIMIT`."""
    cursor = await conn.execute(
        """
        SELECT count(*) AS n FROM (
            SELECT 1 FROM notifications WHERE user_id = %s AND read_at IS NULL LIMIT %s
        ) AS unread
        """,
        (user_id, UNREAD_COUNT_LIMIT),
    )
    row = await cursor.fetchone()
    return int(row["n"]) if row else 0


async def mark_read(
    conn: DictConnection, user_id: str, notification_id: uuid.UUID
) -> NotificationRow | None:
    """Mark one of the user's notifications read (kept as first read); None if not theirs."""
    cursor = await conn.execute(
        f"""
        UPDATE notifications SET read_at = coalesce(read_at, now())
        WHERE id = %s AND user_id = %s
        RETURNING {_NOTIFICATION_COLUMNS}
        """,  # noqa: S608 - a fixed column list
        (notification_id, user_id),
    )
    row = await cursor.fetchone()
    return NotificationRow(**row) if row else None


async def mark_all_read(conn: DictConnection, user_id: str) -> int:
    cursor = await conn.execute(
        "UPDATE notifications SET read_at = now() WHERE user_id = %s AND read_at IS NULL",
        (user_id,),
    )
    return cursor.rowcount


async def order_notifications(conn: DictConnection, order_id: uuid.UUID) -> list[NotificationRow]:
    cursor = await conn.execute(
        f"""
        SELECT {_NOTIFICATION_COLUMNS} FROM notifications
        WHERE order_id = %s ORDER BY order_version, created_at
        """,  # noqa: S608 - a fixed column list
        (order_id,),
    )
    return [NotificationRow(**row) for row in await cursor.fetchall()]


# --- deliveries --------------------------------------------------------------------------


_MARK_QUEUED = """
    UPDATE deliveries d SET status = 'queued', queued_at = now()
    FROM unnest(%(ids)s::uuid[], %(read_at)s::timestamptz[]) AS c (id, updated_at)
    WHERE d.id = c.id AND d.status = 'pending' AND d.updated_at = c.updated_at
"""
"""Mark `queued` the deliveries the broker confirmed (ids, and `updated_at` as read) that are
still pending and unchanged since."""


def _confirmed_columns(confirmed: Sequence[tuple[uuid.UUID, datetime]]) -> dict[str, Any]:
    return {
        "ids": [delivery_id for delivery_id, _ in confirmed],
        "read_at": [updated_at for _, updated_at in confirmed],
    }


async def next_deliveries(
    conn: DictConnection, limit: int, confirmed: Sequence[tuple[uuid.UUID, datetime]]
) -> list[PendingDelivery]:
    """Mark `queued` the deliveries of `confirmed` (id, `updated_at` when read) that are still
    pending and unchanged since, and read the oldest other pending ones, up to `limit` (for
    the leading relay), in one statement. A delivery changed since it was read (a worker took
    it, or an admin sent it again) stays as it is: marked, a delivery sent again would never
    be published."""
    cursor = await conn.execute(
        f"""
        WITH marked AS ({_MARK_QUEUED})
        SELECT d.id, d.channel, n.event_type, d.queue, d.payload, d.trace_context, d.updated_at
        FROM deliveries d JOIN notifications n ON n.id = d.notification_id
        WHERE d.status = 'pending' AND d.id <> ALL(%(ids)s::uuid[])
        ORDER BY d.created_at, d.id LIMIT %(limit)s
        """,  # noqa: S608 - a fixed statement; every value is a parameter
        {**_confirmed_columns(confirmed), "limit": limit},
    )
    return [
        PendingDelivery(
            id=row["id"],
            channel=row["channel"],
            event_type=row["event_type"],
            queue=row["queue"],
            payload=bytes(row["payload"]),
            updated_at=row["updated_at"],
            trace_context=row["trace_context"],
        )
        for row in await cursor.fetchall()
    ]


async def mark_queued(
    conn: DictConnection, confirmed: Sequence[tuple[uuid.UUID, datetime]]
) -> None:
    """Mark `queued` the deliveries of `confirmed` still pending and unchanged since read."""
    await conn.execute(_MARK_QUEUED, _confirmed_columns(confirmed))


async def deliveries_of(
    conn: DictConnection, notification_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[DeliveryRow]]:
    cursor = await conn.execute(
        f"""
        SELECT {_DELIVERY_COLUMNS} FROM deliveries
        WHERE notification_id = ANY(%s) ORDER BY notification_id, channel
        """,  # noqa: S608 - a fixed column list
        (list(notification_ids),),
    )
    rows = await cursor.fetchall()
    cursor = await conn.execute(
        """
        SELECT delivery_id, attempt, outcome, provider_response, duration_ms, created_at
        FROM delivery_attempts WHERE delivery_id = ANY(%s) ORDER BY delivery_id, id
        """,
        ([row["id"] for row in rows],),
    )
    attempts: dict[uuid.UUID, list[AttemptRow]] = {}
    for attempt in await cursor.fetchall():
        attempts.setdefault(attempt["delivery_id"], []).append(AttemptRow(**attempt))
    found: dict[uuid.UUID, list[DeliveryRow]] = {n: [] for n in notification_ids}
    for row in rows:
        found[row["notification_id"]].append(
            DeliveryRow(**row, attempt_log=attempts.get(row["id"], []))
        )
    return found
