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

from services.kit.arrays import TextArray, TimestamptzArray, UuidArray
from services.kit.db import DictConnection
from services.kit.models import row_fields
from services.kit.sql import json_rows
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
class ToRecord:
    """An event's notification and deliveries, made from the user's preferences as saved at
    `preferences_saved_at` (None: the user never saved any)."""

    notification: NotificationRow
    deliveries: Sequence[NewDelivery]
    preferences_saved_at: datetime | None
    trace_context: Mapping[str, str] | None = None
    """The consumed event's trace, which the deliveries to publish go out in."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """What `record_notifications` found for one of them."""

    current: bool
    """The user's stored preferences are the ones the deliveries were made from."""
    newer: bool
    """The event's order version was newer than the newest notified: all of it is recorded."""


# One row per event in `notification` (`seq`: its place), its deliveries in `delivery`
# (`notification`: the seq of theirs). The deliveries' foreign key is checked at the end of
# the statement, when the notifications' rows are there; a payload travels as the text of its
# JSON and is stored as those bytes (UTF-8).
_RECORD = """
    WITH notification AS (
        SELECT *
        FROM json_to_recordset(%(notifications)s::json) AS n (
            seq integer, id uuid, user_id text, order_id uuid, event_id uuid, event_type text,
            order_version integer, title text, body text, data jsonb, created_at timestamptz,
            saved_at timestamptz, trace jsonb)
    ), current AS (
        SELECT n.*
        FROM notification n
        WHERE (SELECT updated_at FROM preferences p WHERE p.user_id = n.user_id)
              IS NOT DISTINCT FROM n.saved_at
    ), newer AS (
        INSERT INTO order_versions (order_id, version)
        SELECT order_id, order_version FROM current
        ON CONFLICT (order_id) DO UPDATE SET version = excluded.version, updated_at = now()
        WHERE order_versions.version < excluded.version
        RETURNING order_id
    ), recorded AS (
        SELECT current.* FROM current JOIN newer USING (order_id)
    ), kept AS (
        INSERT INTO notifications
            (id, user_id, order_id, event_id, event_type, order_version, title, body, data,
             created_at)
        SELECT id, user_id, order_id, event_id, event_type, order_version, title, body, data,
               created_at
        FROM recorded
    ), delivery AS (
        INSERT INTO deliveries
            (id, notification_id, channel, status, recipient, reason, queue, payload,
             trace_context, created_at)
        SELECT d.id, r.id, d.channel,
               CASE WHEN d.payload IS NOT NULL THEN 'pending' ELSE 'skipped' END,
               d.recipient, d.reason, d.queue, convert_to(d.payload, 'UTF8'),
               CASE WHEN d.payload IS NOT NULL THEN r.trace END, r.created_at
        FROM json_to_recordset(%(deliveries)s::json) AS d (
                 notification integer, id uuid, channel text, recipient text, reason text,
                 queue text, payload text)
        JOIN recorded r ON r.seq = d.notification
    )
    SELECT n.seq, c.seq IS NOT NULL AS current, r.seq IS NOT NULL AS newer
    FROM notification n
    LEFT JOIN current c USING (seq)
    LEFT JOIN recorded r USING (seq)
    ORDER BY n.seq
"""


async def record_notifications(conn: DictConnection, events: Sequence[ToRecord]) -> list[Recorded]:
    """Apply events' notifications in one statement, at most one event per order (one
    statement cannot move an order's newest version twice). For each: if the user's stored
    preferences are the ones it was made from and its order version is newer than the newest
    notified for its order, record that version (the stale rule; the upsert's row lock orders
    concurrent events of one order), the (unread) notification and its deliveries; otherwise
    write nothing for it."""
    notifications = []
    deliveries = []
    for seq, event in enumerate(events):
        notification = event.notification
        notifications.append(
            {
                **row_fields(notification),
                "seq": seq,
                "saved_at": event.preferences_saved_at,
                "trace": event.trace_context or None,
            }
        )
        deliveries += [
            {
                "notification": seq,
                "id": delivery.id,
                "channel": delivery.channel,
                "recipient": delivery.recipient,
                "reason": delivery.reason,
                "queue": delivery.queue,
                "payload": None if delivery.payload is None else delivery.payload.decode(),
            }
            for delivery in event.deliveries
        ]
    cursor = await conn.execute(
        _RECORD,
        {"notifications": json_rows(notifications), "deliveries": json_rows(deliveries)},
    )
    return [Recorded(row["current"], row["newer"]) for row in await cursor.fetchall()]


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
    return (await unread_counts(conn, [user_id]))[user_id]


async def unread_counts(conn: DictConnection, user_ids: Sequence[str]) -> dict[str, int]:
    """Each user's unread notifications, at most `UNREAD_COUNT_LIMIT`, in one statement."""
    cursor = await conn.execute(
        """
        SELECT u.user_id, (
            SELECT count(*) FROM (
                SELECT 1 FROM notifications n
                WHERE n.user_id = u.user_id AND n.read_at IS NULL LIMIT %s
            ) AS unread
        ) AS n
        FROM unnest(%b::text[]) AS u (user_id)
        """,
        (UNREAD_COUNT_LIMIT, TextArray(user_ids)),
    )
    return {row["user_id"]: int(row["n"]) for row in await cursor.fetchall()}


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
    UPDATE deliveries d SET status = 'queued', queued_at = now(), payload = NULL
    FROM unnest(%(ids)b::uuid[], %(read_at)b::timestamptz[]) AS c (id, updated_at)
    WHERE d.id = c.id AND d.status = 'pending' AND d.updated_at = c.updated_at
"""
"""Mark `queued` the deliveries the broker confirmed (ids, and `updated_at` as read) that are
still pending and unchanged since. The broker has their message now, so the row lets it go:
each later change of the delivery (claimed, sent) writes a row of about 250 bytes instead of a
kilobyte, and the row kept afterwards is that size too. A dead letter keeps its own copy for a
replay (dead_letters.py)."""


def _confirmed_columns(confirmed: Sequence[tuple[uuid.UUID, datetime]]) -> dict[str, Any]:
    return {
        "ids": UuidArray(delivery_id for delivery_id, _ in confirmed),
        "read_at": TimestamptzArray(updated_at for _, updated_at in confirmed),
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
        WHERE d.status = 'pending' AND d.id <> ALL(%(ids)b::uuid[])
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
