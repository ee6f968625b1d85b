"""All of the inventory service's SQL (schema `inventory`; the pool's search_path names it).

Row locks are always taken in the same order (the order, then stock rows by product id), so
concurrent reservations, releases, commits and stock edits wait for each other but never
deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from psycopg import sql

from services.inventory.domain import NewProduct, ProductQuery, RequestedLine, StockLevel
from services.kit.arrays import (
    ByteaArray,
    IntArray,
    JsonbArray,
    TextArray,
    TimestamptzArray,
)
from services.kit.db import DictConnection
from services.kit.outbox import OutboxRow
from services.kit.sql import like_containing

SCHEMA = "inventory"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True, slots=True)
class StockCounts:
    on_hand: int
    reserved: int
    available: int


@dataclass(frozen=True, slots=True)
class ProductRow:
    id: uuid.UUID
    sku: str
    name: str
    description: str
    price: Decimal
    currency: str
    image_url: str | None
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    stock: StockCounts


@dataclass(frozen=True, slots=True)
class StockRow:
    product_id: uuid.UUID
    on_hand: int
    reserved: int
    available: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AdjustmentRow:
    id: int
    product_id: uuid.UUID
    old_on_hand: int
    new_on_hand: int
    reason: str
    actor_id: str
    actor_email: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReservationRow:
    """What inventory knows of an order (`status`: see the migration's CHECK)."""

    order_id: str
    user_id: str
    status: str
    order_version: int
    expires_at: datetime | None
    reason: str | None


_PRODUCT = """
    SELECT p.id, p.sku, p.name, p.description, p.price, p.currency, p.image_url, p.active,
           p.version, p.created_at, p.updated_at, s.on_hand, s.reserved, s.available
      FROM products p
      JOIN stock s ON s.product_id = p.id
"""
_EDITABLE_COLUMNS = frozenset(
    {"sku", "name", "description", "price", "currency", "image_url", "active"}
)


def _product(row: dict[str, Any]) -> ProductRow:
    stock = StockCounts(row.pop("on_hand"), row.pop("reserved"), row.pop("available"))
    return ProductRow(**row, stock=stock)


# --- products ---------------------------------------------------------------------------------


async def insert_product(conn: DictConnection, product: NewProduct) -> str | None:
    """Insert a product and its stock row; None when the sku exists already."""
    cursor = await conn.execute(
        "INSERT INTO products (sku, name, description, price, currency, image_url)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (sku) DO NOTHING RETURNING id",
        (
            product.sku,
            product.name,
            product.description,
            product.price,
            product.currency,
            product.image_url,
        ),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    await conn.execute(
        "INSERT INTO stock (product_id, on_hand) VALUES (%s, %s)",
        (row["id"], product.initial_stock),
    )
    return str(row["id"])


async def get_product(conn: DictConnection, product_id: str) -> ProductRow | None:
    cursor = await conn.execute(_PRODUCT + " WHERE p.id = %s", (product_id,))
    row = await cursor.fetchone()
    return _product(row) if row else None


async def lock_product(conn: DictConnection, product_id: str) -> ProductRow | None:
    """The product, locked for an edit (not its stock row, which reservations use)."""
    cursor = await conn.execute(_PRODUCT + " WHERE p.id = %s FOR NO KEY UPDATE OF p", (product_id,))
    row = await cursor.fetchone()
    return _product(row) if row else None


async def update_product(conn: DictConnection, product_id: str, changes: dict[str, Any]) -> None:
    """Set `changes` (column → value) and bump the version."""
    unknown = set(changes) - _EDITABLE_COLUMNS
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    assignments = [
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column))
        for column in sorted(changes)
    ]
    statement = sql.SQL(
        "UPDATE products SET {}, version = version + 1, updated_at = now() WHERE id = {}"
    ).format(sql.SQL(", ").join(assignments), sql.Placeholder("id"))
    await conn.execute(statement, {**changes, "id": product_id})


async def list_products(conn: DictConnection, query: ProductQuery) -> list[ProductRow]:
    """The products matching `query` ordered by (name, id); one more than a page, to see if
    another page follows."""
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if query.ids is not None:
        conditions.append("p.id = ANY(%(ids)b::uuid[])")
        params["ids"] = list(query.ids)
    if query.q is not None:
        conditions.append("(p.name ILIKE %(pattern)s OR p.sku ILIKE %(pattern)s)")
        params["pattern"] = like_containing(query.q)
    if query.active_only:
        conditions.append("p.active")
    if query.active is not None:
        conditions.append("p.active = %(active)s")
        params["active"] = query.active
    if query.currency is not None:
        conditions.append("p.currency = %(currency)s")
        params["currency"] = query.currency
    if query.min_price is not None:
        conditions.append("p.price >= %(min_price)s")
        params["min_price"] = query.min_price
    if query.max_price is not None:
        conditions.append("p.price <= %(max_price)s")
        params["max_price"] = query.max_price
    if query.after is not None:
        conditions.append("(p.name, p.id) > (%(after_name)s, %(after_id)s::uuid)")
        params["after_name"], params["after_id"] = query.after
    statement = _PRODUCT
    if conditions:
        statement += " WHERE " + " AND ".join(conditions)
    statement += " ORDER BY p.name, p.id"
    if query.ids is None:
        statement += " LIMIT %(limit)s"
        params["limit"] = query.limit + 1
    cursor = await conn.execute(statement, params)
    return [_product(row) for row in await cursor.fetchall()]


# --- stock ------------------------------------------------------------------------------------


async def get_stock(conn: DictConnection, product_id: str) -> StockRow | None:
    cursor = await conn.execute(
        "SELECT product_id, on_hand, reserved, available, updated_at FROM stock"
        " WHERE product_id = %s",
        (product_id,),
    )
    row = await cursor.fetchone()
    return StockRow(**row) if row else None


async def lock_stock(conn: DictConnection, product_id: str) -> StockRow | None:
    cursor = await conn.execute(
        "SELECT product_id, on_hand, reserved, available, updated_at FROM stock"
        " WHERE product_id = %s FOR UPDATE",
        (product_id,),
    )
    row = await cursor.fetchone()
    return StockRow(**row) if row else None


async def set_on_hand(conn: DictConnection, product_id: str, on_hand: int) -> StockRow:
    cursor = await conn.execute(
        "UPDATE stock SET on_hand = %s, updated_at = now() WHERE product_id = %s"
        " RETURNING product_id, on_hand, reserved, available, updated_at",
        (on_hand, product_id),
    )
    row = await cursor.fetchone()
    assert row is not None
    return StockRow(**row)


async def add_adjustment(
    conn: DictConnection,
    product_id: str,
    old_on_hand: int,
    new_on_hand: int,
    reason: str,
    actor_id: str,
    actor_email: str,
) -> None:
    await conn.execute(
        "INSERT INTO stock_adjustments"
        " (product_id, old_on_hand, new_on_hand, reason, actor_id, actor_email)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (product_id, old_on_hand, new_on_hand, reason, actor_id, actor_email),
    )


async def list_adjustments(
    conn: DictConnection, product_id: str, limit: int
) -> list[AdjustmentRow]:
    cursor = await conn.execute(
        "SELECT id, product_id, old_on_hand, new_on_hand, reason, actor_id, actor_email,"
        " created_at FROM stock_adjustments WHERE product_id = %s ORDER BY id DESC LIMIT %s",
        (product_id, limit),
    )
    return [AdjustmentRow(**row) for row in await cursor.fetchall()]


# --- reservations -----------------------------------------------------------------------------


async def lock_order(conn: DictConnection, order_id: str) -> None:
    """Serialise every change about one order until the transaction ends.

    The events of one order arrive on different topics, so two replicas may handle its
    order.created and order.cancelled at the same moment; this makes one wait for the other.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('order:' || %s))", (order_id,))


async def get_reservation(conn: DictConnection, order_id: str) -> ReservationRow | None:
    cursor = await conn.execute(
        "SELECT order_id, user_id, status, order_version, expires_at, reason"
        " FROM reservations WHERE order_id = %s",
        (order_id,),
    )
    row = await cursor.fetchone()
    return ReservationRow(**row) if row else None


async def lock_stock_levels(
    conn: DictConnection, product_ids: Sequence[str]
) -> dict[str, StockLevel]:
    """The stock levels of `product_ids` (those that exist), by product id; their rows are
    locked in product id order (the lock order everywhere)."""
    cursor = await conn.execute(
        "SELECT s.product_id::text AS product_id, s.available, p.active"
        "  FROM stock s JOIN products p ON p.id = s.product_id"
        " WHERE s.product_id = ANY(%b::uuid[])"
        " ORDER BY s.product_id FOR UPDATE OF s",
        (list(product_ids),),
    )
    return {
        row["product_id"]: StockLevel(available=row["available"], active=row["active"])
        for row in await cursor.fetchall()
    }


async def insert_reservation(
    conn: DictConnection,
    order_id: str,
    user_id: str,
    status: str,
    order_version: int,
    *,
    reason: str | None = None,
) -> None:
    """Record what inventory knows of an order that holds no stock (refused, or cancelled
    before it was seen); `reserve` records a reservation."""
    await conn.execute(
        "INSERT INTO reservations (order_id, user_id, status, order_version, reason)"
        " VALUES (%s, %s, %s, %s, %s)",
        (order_id, user_id, status, order_version, reason),
    )


@dataclass(frozen=True, slots=True)
class NewReservation:
    """An order to reserve together with others (`reserve_all_if_available`): its lines
    (product ids as UUIDs, each once), when the reservation expires, and the `confirmed` event
    that announces it."""

    order_id: str
    user_id: str
    order_version: int
    lines: Sequence[RequestedLine]
    expires_at: datetime
    confirmed: OutboxRow


async def reserve_all_if_available(
    conn: DictConnection, orders: Sequence[NewReservation]
) -> set[str]:
    """Reserve every line of every order of `orders` if each of their products is active and
    has the units for all of them together; the ids of the orders reserved: every one not
    recorded already, or none, with nothing written, when the units are short.

    One statement, which commits by itself on an autocommit connection: it takes the orders'
    locks (`lock_order`, in order id order), locks the stock rows of all their lines in product
    id order and checks them against the orders' sum, then records the reservations and their
    lines, moves the units to `reserved` and writes each reserved order's `confirmed` event to
    the outbox. An order recorded already (a redelivery, or cancelled before it arrived) is
    left as it is, though its units counted in the check. The orders must be different ones.

    The stock and product rows are found by the lines' product ids as an array: joined on the
    unnested lines alone, whose count the plan guesses, a catalogue of a thousand products was
    read whole (stock twice) by every statement.
    """
    cursor = await conn.execute(
        """
        WITH wanted_orders AS (
            SELECT * FROM unnest(%(order_ids)b::text[], %(user_ids)b::text[],
                                 %(versions)b::int[], %(expires)b::timestamptz[],
                                 %(event_ids)b::uuid[], %(topics)b::text[],
                                 %(message_keys)b::text[], %(payloads)b::bytea[],
                                 %(traces)b::jsonb[])
                WITH ORDINALITY
                AS o (order_id, user_id, version, expires_at, event_id, topic, message_key,
                      payload, trace_context, seq)
        ), locked AS (
            SELECT pg_advisory_xact_lock(hashtext('order:' || order_id))
            FROM (SELECT order_id FROM wanted_orders ORDER BY order_id) AS by_id
        ), wanted AS (
            SELECT * FROM unnest(%(line_orders)b::text[], %(product_ids)b::uuid[],
                                 %(quantities)b::int[])
                AS l (order_id, product_id, quantity)
        ), totals AS (
            SELECT product_id, sum(quantity) AS quantity FROM wanted GROUP BY product_id
        ), levels AS (
            SELECT s.product_id, s.available, p.active
            FROM stock s JOIN products p ON p.id = s.product_id
            WHERE s.product_id = ANY(%(product_ids)b::uuid[])
              AND p.id = ANY(%(product_ids)b::uuid[])
              AND (SELECT count(*) FROM locked) = cardinality(%(order_ids)b::text[])
            ORDER BY s.product_id FOR UPDATE OF s
        ), fits AS (
            SELECT FROM totals t JOIN levels l USING (product_id)
            WHERE l.active AND l.available >= t.quantity
            HAVING count(*) = (SELECT count(*) FROM totals)
        ), reservation AS (
            INSERT INTO reservations (order_id, user_id, status, order_version, expires_at)
            SELECT o.order_id, o.user_id, 'RESERVED', o.version, o.expires_at
            FROM wanted_orders o, fits
            ON CONFLICT (order_id) DO NOTHING
            RETURNING order_id
        ), reserved AS (
            UPDATE stock SET reserved = stock.reserved + r.quantity, updated_at = now()
            FROM (
                SELECT w.product_id, sum(w.quantity) AS quantity
                FROM wanted w JOIN reservation USING (order_id)
                GROUP BY w.product_id
            ) AS r
            WHERE stock.product_id = r.product_id
              AND stock.product_id = ANY(%(product_ids)b::uuid[])
        ), reserved_lines AS (
            INSERT INTO reservation_lines (order_id, product_id, quantity)
            SELECT w.order_id, w.product_id, w.quantity
            FROM wanted w JOIN reservation USING (order_id)
        ), confirmed AS (
            INSERT INTO outbox (event_id, topic, message_key, payload, trace_context)
            SELECT o.event_id, o.topic, o.message_key, o.payload, o.trace_context
            FROM wanted_orders o JOIN reservation USING (order_id)
            ORDER BY o.seq
        )
        SELECT order_id FROM reservation
        """,
        {
            "order_ids": TextArray(o.order_id for o in orders),
            "user_ids": TextArray(o.user_id for o in orders),
            "versions": IntArray(o.order_version for o in orders),
            "expires": TimestamptzArray(o.expires_at for o in orders),
            "event_ids": TextArray(o.confirmed.event_id for o in orders),
            "topics": TextArray(o.confirmed.topic for o in orders),
            "message_keys": TextArray(o.confirmed.message_key for o in orders),
            "payloads": ByteaArray(o.confirmed.payload for o in orders),
            "traces": JsonbArray(o.confirmed.trace_context for o in orders),
            "line_orders": TextArray(o.order_id for o in orders for _ in o.lines),
            "product_ids": TextArray(line.product_id for o in orders for line in o.lines),
            "quantities": IntArray(line.quantity for o in orders for line in o.lines),
        },
    )
    return {row["order_id"] for row in await cursor.fetchall()}


async def lock_reserved_stock(conn: DictConnection, order_id: str) -> None:
    """Lock the stock rows of the order's lines, in product id order."""
    await conn.execute(
        "SELECT s.product_id FROM reservation_lines l JOIN stock s ON s.product_id = l.product_id"
        " WHERE l.order_id = %s ORDER BY l.product_id FOR UPDATE OF s",
        (order_id,),
    )


async def release_stock(conn: DictConnection, order_id: str) -> None:
    """Give the order's reserved units back (they stay on hand)."""
    await conn.execute(
        "UPDATE stock SET reserved = stock.reserved - l.quantity, updated_at = now()"
        "  FROM reservation_lines l"
        " WHERE l.order_id = %s AND stock.product_id = l.product_id",
        (order_id,),
    )


async def commit_stock(conn: DictConnection, order_id: str) -> None:
    """The order's reserved units leave the warehouse."""
    await conn.execute(
        "UPDATE stock SET on_hand = stock.on_hand - l.quantity,"
        "                 reserved = stock.reserved - l.quantity, updated_at = now()"
        "  FROM reservation_lines l"
        " WHERE l.order_id = %s AND stock.product_id = l.product_id",
        (order_id,),
    )


async def commit_unreserved_stock(conn: DictConnection, order_id: str) -> None:
    """Units of an already released reservation leave the warehouse: on hand drops, but never
    below what other orders hold reserved."""
    await conn.execute(
        "UPDATE stock SET on_hand = GREATEST(stock.on_hand - l.quantity, stock.reserved),"
        "                 updated_at = now()"
        "  FROM reservation_lines l"
        " WHERE l.order_id = %s AND stock.product_id = l.product_id",
        (order_id,),
    )


async def set_reservation_status(
    conn: DictConnection, order_id: str, status: str, order_version: int, reason: str | None
) -> None:
    await conn.execute(
        "UPDATE reservations SET status = %s, reason = %s, updated_at = now(),"
        " order_version = GREATEST(order_version, %s) WHERE order_id = %s",
        (status, reason, order_version, order_id),
    )


async def due_reservations(conn: DictConnection, limit: int) -> list[str]:
    """Ids of orders whose reservation has expired, oldest first."""
    cursor = await conn.execute(
        "SELECT order_id FROM reservations WHERE status = 'RESERVED' AND expires_at <= now()"
        " ORDER BY expires_at LIMIT %s",
        (limit,),
    )
    return [row["order_id"] for row in await cursor.fetchall()]
