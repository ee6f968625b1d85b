"""All SQL of the orders service. Tables live in the `orders` schema (the pool's search_path)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from services.kit.arrays import (
    ByteaArray,
    IntArray,
    JsonbArray,
    NumericArray,
    TextArray,
    TimestamptzArray,
    UuidArray,
)
from services.kit.db import DictConnection, Filters
from services.kit.outbox import OutboxRow
from services.kit.sql import json_rows, like_containing, like_starting_with
from services.orders.domain import (
    OPEN_STATUSES,
    Cursor,
    HoldingLimits,
    Holdings,
    PricedOrder,
    Status,
)

SCHEMA = "orders"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True, slots=True)
class OrderRow:
    id: uuid.UUID
    user_id: str
    status: Status
    version: int
    total: Decimal
    currency: str
    shipping_address: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class LineRow:
    order_id: uuid.UUID
    line_no: int
    product_id: str
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


@dataclass(frozen=True, slots=True)
class TimelineRow:
    order_id: uuid.UUID
    version: int
    status: Status
    actor: str
    reason: str | None
    event_id: uuid.UUID | None
    at: datetime


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    request_hash: str
    order_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """What GET /orders narrows the list to; `user_id` None means every user's orders."""

    user_id: str | None = None
    statuses: Sequence[Status] = ()
    created_from: datetime | None = None
    created_to: datetime | None = None
    text: str | None = None


_ORDER_COLUMNS = (
    "id, user_id, status, version, total, currency::text AS currency, shipping_address,"
    " created_at, updated_at"
)
"""An `OrderRow`'s columns, as the statements below read or return them."""


def _order(row: dict[str, Any]) -> OrderRow:
    return OrderRow(**{**row, "status": Status(row["status"])})


# --- create ------------------------------------------------------------------------------


async def find_idempotency_key(
    conn: DictConnection, *, user_id: str, key: str, ttl_hours: int
) -> IdempotencyRecord | None:
    cursor = await conn.execute(
        """
        SELECT request_hash, order_id FROM idempotency_keys
        WHERE user_id = %s AND key = %s AND created_at >= now() - make_interval(hours => %s)
        """,
        (user_id, key, ttl_hours),
    )
    row = await cursor.fetchone()
    return IdempotencyRecord(**row) if row else None


async def purge_idempotency_keys(conn: DictConnection, *, ttl_hours: int) -> int:
    cursor = await conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => %s)",
        (ttl_hours,),
    )
    return cursor.rowcount


async def count_unsettled(conn: DictConnection, *, up_to: int) -> int:
    """How many orders wait for inventory's answer (CREATED), counted up to `up_to`: the count
    stops there, so a long backlog costs no more than a full one. The status is written out for
    the partial index `orders_unsettled` (migration 0003)."""
    cursor = await conn.execute(
        "SELECT count(*) AS n FROM"
        " (SELECT 1 FROM orders WHERE status = 'CREATED' LIMIT %s) AS unsettled",
        (up_to,),
    )
    row = await cursor.fetchone()
    return int(row["n"]) if row else 0


@dataclass(frozen=True, slots=True)
class GroupHoldings:
    """What `lock_and_read_holdings` read for a group of creates."""

    by_user: dict[str, Holdings]
    """Each user's open orders and units (a user who holds nothing has no entry)."""
    keys_taken: frozenset[tuple[str, str]]
    """The claims, as (user, key), that a live record already holds: those creates write
    nothing (`place_orders`)."""


_OPEN = "(" + ", ".join(f"'{status}'" for status in sorted(map(str, OPEN_STATUSES))) + ")"
"""The open statuses as an SQL list, written out so the planner can use the partial index of open
orders (`orders_user_open`, migration 0002), which a parameter could not prove it may."""


async def lock_and_read_holdings(
    conn: DictConnection,
    user_ids: Sequence[str],
    product_ids: Sequence[str],
    limits: HoldingLimits,
    *,
    claims: Sequence[tuple[str, str]] = (),
    ttl_hours: int,
) -> GroupHoldings:
    """Lock each user with a transaction lock, then read what their open orders hold and
    which of the `claims` (user, Idempotency-Key) a live record holds, so that creates of one
    user, placed together or concurrently, cannot pass the limits on the same reading.

    Every create takes its users' locks in one order (by the lock's key), so two groups never
    wait for each other. Only what the limits in force need is read: no count without an
    open-orders limit, no sum without a units limit. Both reads go through the partial index
    of open orders, so they cost what the users hold (bounded by the limits), not their whole
    history. The statements are sent before any result is read: in pipeline mode, one round
    trip.
    """
    await conn.execute(
        """
        SELECT pg_advisory_xact_lock(lock_key)
        FROM (
            SELECT DISTINCT hashtextextended(user_id, 0) AS lock_key
            FROM unnest(%b::text[]) AS user_id
            ORDER BY lock_key
        ) AS by_key
        """,
        (TextArray(user_ids),),
    )
    counted = summed = taken = None
    if limits.open_orders is not None:
        counted = await conn.execute(
            f"""
            SELECT user_id, count(*) AS n FROM orders
            WHERE user_id = ANY(%b::text[]) AND status IN {_OPEN}
            GROUP BY user_id
            """,  # noqa: S608 - a fixed list of statuses; every value is a parameter
            (TextArray(user_ids),),
        )
    if limits.units_per_product is not None:
        summed = await conn.execute(
            f"""
            SELECT o.user_id, l.product_id, sum(l.quantity) AS units
            FROM orders o JOIN order_lines l ON l.order_id = o.id
            WHERE o.user_id = ANY(%b::text[]) AND o.status IN {_OPEN}
              AND l.product_id = ANY(%b::text[])
            GROUP BY o.user_id, l.product_id
            """,  # noqa: S608 - a fixed list of statuses; every value is a parameter
            (TextArray(user_ids), TextArray(product_ids)),
        )
    if claims:
        taken = await conn.execute(
            """
            SELECT user_id, key FROM idempotency_keys
            WHERE (user_id, key) IN (SELECT * FROM unnest(%b::text[], %b::text[]))
              AND created_at >= now() - make_interval(hours => %s)
            """,
            (
                TextArray(user_id for user_id, _ in claims),
                TextArray(key for _, key in claims),
                ttl_hours,
            ),
        )
    open_orders: dict[str, int] = {}
    if counted is not None:
        open_orders = {row["user_id"]: int(row["n"]) for row in await counted.fetchall()}
    units: dict[str, dict[str, int]] = {}
    if summed is not None:
        for row in await summed.fetchall():
            units.setdefault(row["user_id"], {})[row["product_id"]] = int(row["units"])
    keys_taken: frozenset[tuple[str, str]] = frozenset()
    if taken is not None:
        keys_taken = frozenset((row["user_id"], row["key"]) for row in await taken.fetchall())
    return GroupHoldings(
        by_user={
            user_id: Holdings(open_orders=open_orders.get(user_id, 0), units=units.get(user_id, {}))
            for user_id in open_orders.keys() | units.keys()
        },
        keys_taken=keys_taken,
    )


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """The Idempotency-Key a create claims for its order, with the request's fingerprint."""

    key: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class Placement:
    """One new order for `place_orders`: its lines priced, its created event built and, with
    an Idempotency-Key, the claim on the key. Its times are `placed_at`, the time the created
    event carries."""

    order_id: uuid.UUID
    user_id: str
    priced: PricedOrder
    shipping_address: dict[str, Any]
    placed_at: datetime
    actor: str
    created: OutboxRow
    claim: KeyClaim | None


Placed = tuple[OrderRow, TimelineRow]
"""A placed order and its first timeline entry."""


async def place_orders(
    conn: DictConnection, placements: Sequence[Placement], *, ttl_hours: int
) -> list[Placed | None]:
    """Place orders in one statement, each as a create alone would: claim its Idempotency-Key
    (when it has one; a record of the key older than `ttl_hours` is taken over), and only if
    the key was claimed write the order, its lines, its first timeline entry (by its actor,
    for the created event) and its created event to the outbox.

    One result per placement, in their order: None, with nothing written for it, when a live
    record already has its key. A concurrent create with the same key waits on the key's
    primary key until the first commits, then finds it taken; two placements of one statement
    must not share a user's key (PostgreSQL refuses to change one row twice). Each order's
    columns and its lines go as arrays, one per column, the lines naming their order. The
    statement commits by itself on an autocommit connection, or with the transaction it runs
    in.
    """
    lines = [
        (p.order_id, line_no, line)
        for p in placements
        for line_no, line in enumerate(p.priced.lines, start=1)
    ]
    cursor = await conn.execute(
        f"""
        WITH placement AS (
            SELECT * FROM unnest(
                %(o_id)b::uuid[], %(o_user_id)b::text[], %(o_key)b::text[],
                %(o_request_hash)b::text[], %(o_total)t::numeric[], %(o_currency)b::text[],
                %(o_address)b::jsonb[], %(o_placed_at)b::timestamptz[], %(o_actor)b::text[],
                %(o_event_id)b::uuid[], %(o_topic)b::text[], %(o_message_key)b::text[],
                %(o_payload)b::bytea[], %(o_trace)b::jsonb[]
            ) AS p (id, user_id, key, request_hash, total, currency, address, placed_at, actor,
                    event_id, topic, message_key, payload, trace)
        ), claimed AS (
            INSERT INTO idempotency_keys AS k (user_id, key, request_hash, order_id)
            SELECT user_id, key, request_hash, id FROM placement WHERE key IS NOT NULL
            ON CONFLICT (user_id, key) DO UPDATE
                SET request_hash = EXCLUDED.request_hash,
                    order_id = EXCLUDED.order_id,
                    created_at = now()
                WHERE k.created_at < now() - make_interval(hours => %(ttl_hours)s)
            RETURNING order_id
        ), admitted AS (
            SELECT * FROM placement p
            WHERE p.key IS NULL OR p.id IN (SELECT order_id FROM claimed)
        ), placed AS (
            INSERT INTO orders
                (id, user_id, status, version, total, currency, shipping_address, created_at,
                 updated_at)
            SELECT id, user_id, 'CREATED', 1, total, currency, address, placed_at, placed_at
            FROM admitted
            RETURNING {_ORDER_COLUMNS}
        ), placed_lines AS (
            INSERT INTO order_lines
                (order_id, line_no, product_id, sku, name, quantity, unit_price, line_total)
            SELECT l.order_id, l.line_no, l.product_id, l.sku, l.name, l.quantity,
                   l.unit_price, l.line_total
            FROM unnest(
                %(l_order_id)b::uuid[], %(l_line_no)b::int[], %(l_product_id)b::text[],
                %(l_sku)b::text[], %(l_name)b::text[], %(l_quantity)b::int[],
                %(l_unit_price)t::numeric[], %(l_line_total)t::numeric[]
            ) AS l (order_id, line_no, product_id, sku, name, quantity, unit_price, line_total)
            WHERE l.order_id IN (SELECT id FROM admitted)
        ), first_entry AS (
            INSERT INTO order_timeline (order_id, version, status, actor, reason, event_id, at)
            SELECT id, 1, 'CREATED', actor, NULL, event_id, placed_at FROM admitted
        ), announced AS (
            INSERT INTO outbox (event_id, topic, message_key, payload, trace_context)
            SELECT event_id, topic, message_key, payload, trace FROM admitted
        )
        SELECT * FROM placed
        """,  # noqa: S608 - a fixed column list
        {
            "o_id": UuidArray(p.order_id for p in placements),
            "o_user_id": TextArray(p.user_id for p in placements),
            "o_key": TextArray(p.claim.key if p.claim else None for p in placements),
            "o_request_hash": TextArray(
                p.claim.request_hash if p.claim else None for p in placements
            ),
            "o_total": NumericArray(p.priced.total for p in placements),
            "o_currency": TextArray(p.priced.currency for p in placements),
            "o_address": JsonbArray(p.shipping_address for p in placements),
            "o_placed_at": TimestamptzArray(p.placed_at for p in placements),
            "o_actor": TextArray(p.actor for p in placements),
            "o_event_id": TextArray(p.created.event_id for p in placements),
            "o_topic": TextArray(p.created.topic for p in placements),
            "o_message_key": TextArray(p.created.message_key for p in placements),
            "o_payload": ByteaArray(p.created.payload for p in placements),
            "o_trace": JsonbArray(p.created.trace_context for p in placements),
            "l_order_id": UuidArray(order_id for order_id, _, _ in lines),
            "l_line_no": IntArray(line_no for _, line_no, _ in lines),
            "l_product_id": TextArray(line.product_id for _, _, line in lines),
            "l_sku": TextArray(line.sku for _, _, line in lines),
            "l_name": TextArray(line.name for _, _, line in lines),
            "l_quantity": IntArray(line.quantity for _, _, line in lines),
            "l_unit_price": NumericArray(line.unit_price for _, _, line in lines),
            "l_line_total": NumericArray(line.line_total for _, _, line in lines),
            "ttl_hours": ttl_hours,
        },
    )
    placed = {row["id"]: _order(row) for row in await cursor.fetchall()}
    results: list[Placed | None] = []
    for p in placements:
        order = placed.get(p.order_id)
        if order is None:
            results.append(None)
            continue
        entry = _entry(
            order, actor=p.actor, reason=None, event_id=p.created.event_id, at=p.placed_at
        )
        results.append((order, entry))
    return results


# --- status changes ----------------------------------------------------------------------


async def lock_order(conn: DictConnection, order_id: uuid.UUID) -> OrderRow | None:
    """The order, locked until the transaction ends, so its changes apply one at a time."""
    cursor = await conn.execute(
        f"""
        SELECT {_ORDER_COLUMNS} FROM orders WHERE id = %s FOR UPDATE
        """,  # noqa: S608 - a fixed column list
        (order_id,),
    )
    row = await cursor.fetchone()
    return _order(row) if row else None


@dataclass(frozen=True, slots=True)
class Move:
    """One move `move_many` is asked for: the order, the status it goes to from one of
    `sources`, the timeline entry's reason and the event that asks."""

    order_id: uuid.UUID
    status: Status
    sources: Sequence[Status]
    reason: str | None
    event_id: str


async def move_many(
    conn: DictConnection, moves: Sequence[Move], *, actor: str
) -> dict[int, tuple[OrderRow, TimelineRow]]:
    """Move each order to its `status` at its next version if it is in one of its `sources`,
    and record that version in its timeline (by `actor`, for the move's event, at the order's
    new `updated_at`), all in one statement (the update locks the rows and checks the status
    it finds). Returns, by the position of each move in `moves`, the order and timeline entry
    of those that moved; an unknown order or one in another status changes nothing. Only an
    order's first move is tried (one statement updates a row once); a later move of the same
    order moves nothing, as it would after the first when every move of an order comes from
    the same `sources`.

    The planner cannot see how many rows the JSON holds and guesses a hundred; joined on that
    guess alone, a table of some ten thousand orders was scanned whole for every group (a hash
    join costed below a hundred index lookups). The ids as an array (`id = ANY(ARRAY(...))`)
    make it an index lookup whatever the table's size."""
    cursor = await conn.execute(
        f"""
        WITH move AS (
            SELECT DISTINCT ON (m.order_id) m.*
            FROM json_to_recordset(%(moves)s::json) AS m (
                seq integer, order_id uuid, target text, sources text, reason text,
                event_id uuid
            )
            ORDER BY m.order_id, m.seq
        ), changed AS (
            UPDATE orders o
            SET status = m.target, version = o.version + 1, updated_at = now()
            FROM move m
            WHERE o.id = m.order_id AND o.status = ANY(string_to_array(m.sources, ','))
              AND o.id = ANY(ARRAY(SELECT order_id FROM move))
            RETURNING m.seq, m.reason AS move_reason, m.event_id AS move_event,
                      {_ORDER_COLUMNS}
        ), entry AS (
            INSERT INTO order_timeline (order_id, version, status, actor, reason, event_id, at)
            SELECT id, version, status, %(actor)s::text, move_reason, move_event, updated_at
            FROM changed
        )
        SELECT * FROM changed
        """,  # noqa: S608 - a fixed column list
        {
            "moves": json_rows(
                [
                    {
                        "seq": seq,
                        "order_id": move.order_id,
                        "target": move.status,
                        "sources": ",".join(move.sources),
                        "reason": move.reason,
                        "event_id": move.event_id,
                    }
                    for seq, move in enumerate(moves)
                ]
            ),
            "actor": actor,
        },
    )
    moved: dict[int, tuple[OrderRow, TimelineRow]] = {}
    for row in await cursor.fetchall():
        seq, reason, event_id = row.pop("seq"), row.pop("move_reason"), row.pop("move_event")
        order = _order(row)
        moved[seq] = (
            order,
            _entry(order, actor=actor, reason=reason, event_id=event_id, at=order.updated_at),
        )
    return moved


def _entry(
    order: OrderRow,
    *,
    actor: str,
    reason: str | None,
    event_id: uuid.UUID | str | None,
    at: datetime,
) -> TimelineRow:
    """The timeline entry a statement above wrote for the order's current version."""
    return TimelineRow(
        order_id=order.id,
        version=order.version,
        status=order.status,
        actor=actor,
        reason=reason,
        event_id=event_id if isinstance(event_id, uuid.UUID | None) else uuid.UUID(event_id),
        at=at,
    )


# --- reads -------------------------------------------------------------------------------


async def order_with_event(
    conn: DictConnection, order_id: uuid.UUID, event_id: str
) -> tuple[OrderRow, bool] | None:
    """The order, and whether its timeline holds an entry for the event `event_id` (a change
    that event made already); None for an unknown order."""
    cursor = await conn.execute(
        f"""
        SELECT {_ORDER_COLUMNS},
               EXISTS (
                   SELECT 1 FROM order_timeline t
                   WHERE t.order_id = orders.id AND t.event_id = %(event)s::uuid
               ) AS applied
        FROM orders WHERE id = %(id)s
        """,  # noqa: S608 - a fixed column list
        {"id": order_id, "event": event_id},
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    applied = bool(row.pop("applied"))
    return _order(row), applied


async def get_order(conn: DictConnection, order_id: uuid.UUID) -> OrderRow | None:
    cursor = await conn.execute(
        f"""
        SELECT {_ORDER_COLUMNS} FROM orders WHERE id = %s
        """,  # noqa: S608 - a fixed column list
        (order_id,),
    )
    row = await cursor.fetchone()
    return _order(row) if row else None


async def get_lines(
    conn: DictConnection, order_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[LineRow]]:
    """The lines of each order, in line order."""
    cursor = await conn.execute(
        """
        SELECT order_id, line_no, product_id, sku, name, quantity, unit_price, line_total
        FROM order_lines WHERE order_id = ANY(%s) ORDER BY order_id, line_no
        """,
        (list(order_ids),),
    )
    lines: dict[uuid.UUID, list[LineRow]] = {order_id: [] for order_id in order_ids}
    for row in await cursor.fetchall():
        lines[row["order_id"]].append(LineRow(**row))
    return lines


async def get_timeline(
    conn: DictConnection, order_id: uuid.UUID, *, since_version: int = 0
) -> list[TimelineRow]:
    cursor = await conn.execute(
        """
        SELECT order_id, version, status, actor, reason, event_id, at
        FROM order_timeline WHERE order_id = %s AND version > %s ORDER BY version
        """,
        (order_id, since_version),
    )
    return [
        TimelineRow(**{**row, "status": Status(row["status"])}) for row in await cursor.fetchall()
    ]


async def list_orders(
    conn: DictConnection, where: OrderFilter, *, after: Cursor | None, limit: int
) -> list[OrderRow]:
    """One page of orders, newest first, strictly after `after` when given."""
    filters = Filters({"limit": limit})
    filters.add("o.user_id = %(user_id)s", user_id=where.user_id)
    if where.statuses:
        filters.add("o.status = ANY(%(statuses)s)", statuses=[str(s) for s in where.statuses])
    filters.add("o.created_at >= %(created_from)s", created_from=where.created_from)
    filters.add("o.created_at < %(created_to)s", created_to=where.created_to)
    if where.text:
        # An order id prefix, or part of a product's name or sku on one of its lines.
        filters.add(
            """(o.id::text LIKE %(id_prefix)s OR EXISTS (
                   SELECT 1 FROM order_lines l WHERE l.order_id = o.id
                   AND (l.name ILIKE %(text)s OR l.sku ILIKE %(text)s)))""",
            id_prefix=like_starting_with(where.text.lower()),
            text=like_containing(where.text),
        )
    if after is not None:
        filters.add(
            "(o.created_at, o.id) < (%(after_at)s, %(after_id)s)",
            after_at=after.created_at,
            after_id=after.id,
        )
    cursor = await conn.execute(
        f"""
        SELECT o.id, o.user_id, o.status, o.version, o.total, o.currency::text AS currency,
               o.shipping_address, o.created_at, o.updated_at
        FROM orders o WHERE {filters.where}
        ORDER BY o.created_at DESC, o.id DESC
        LIMIT %(limit)s
        """,  # noqa: S608 - the conditions are fixed strings; every value is a parameter
        filters.params,
    )
    return [_order(row) for row in await cursor.fetchall()]
