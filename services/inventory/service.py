"""The inventory service's decisions: the catalogue, stock edits and reservations.

`InventoryService` runs the pure reservation rule (domain.py: all lines or none) and the
catalogue edits inside transactions, and invalidates the product cache after each commit.
Reservation methods run inside the consumer's transaction (kit/consumer.py: it shares the
event's dedupe record) and return their after-commit effects instead of running them.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Literal

from psycopg.errors import UniqueViolation

from services.inventory import repository as repo
from services.inventory.cache import ProductListCache
from services.inventory.domain import (
    ProductQuery,
    RequestedLine,
    decide_reservation,
    encode_cursor,
    merge_lines,
    parse_product_id,
    refusal_summary,
)
from services.inventory.errors import (
    BelowReserved,
    PreconditionFailed,
    ProductNotFound,
    SkuTaken,
    VersionMismatch,
)
from services.inventory.metrics import RESERVATION_FAILURES, RESERVATION_OUTCOMES, RESERVATIONS
from services.inventory.schemas import (
    AdjustmentOut,
    ProductCreate,
    ProductOut,
    ProductPage,
    ProductPatch,
    StockLevelOut,
)
from services.kit.after_commit import Coalesced, Effect
from services.kit.consumer import Applied, Consumed
from services.kit.db import DictConnection, Pool
from services.kit.order_events import (
    ORDER_CONFIRMED,
    ORDER_CREATED,
    ORDER_FAILED,
    RESERVATION_EXPIRED,
    OrderConfirmed,
    OrderCreated,
    OrderFailed,
    OrderStatusChanged,
    ReservationExpired,
)
from services.kit.outbox import add_to_outbox, claim_events, event, outbox_row
from services.kit.tokens import Principal

log = logging.getLogger(__name__)

EVENT_SOURCE = "/inventory"
SWEEP_BATCH = 100

Outcome = Literal["confirmed", "failed", "released", "committed", "tombstoned", "ignored"]
STOCK_CHANGING_OUTCOMES = frozenset({"confirmed", "released", "committed"})
PRODUCT_CACHE_STALE = "product-cache-stale"
"""The key of the after-commit invalidation: one waiting covers every change before it."""


def _well_formed(lines: Sequence[RequestedLine]) -> bool:
    """Whether an order has lines and each names a product by UUID and wants some units: only
    such orders are tried in one statement (the checked path refuses the others)."""
    return bool(lines) and all(
        parse_product_id(line.product_id) and line.quantity > 0 for line in lines
    )


def _reservation(
    order: OrderCreated,
    lines: list[RequestedLine],
    expires_at: datetime,
    trace_context: Mapping[str, str] | None = None,
) -> repo.NewReservation:
    """A new order's reservation as the statement writes it, with the order.confirmed that
    announces it, in `trace_context` (its event's trace) or else the active one."""
    confirmed = OrderConfirmed(
        order_id=order.order_id,
        user_id=order.user_id,
        version=order.version,
        reservation_expires_at=expires_at,
    )
    return repo.NewReservation(
        order_id=order.order_id,
        user_id=order.user_id,
        order_version=order.version,
        lines=lines,
        expires_at=expires_at,
        confirmed=outbox_row(
            ORDER_CONFIRMED,
            event(EVENT_SOURCE, ORDER_CONFIRMED, order.order_id, confirmed),
            trace_context=trace_context,
        ),
    )


class InventoryService:
    def __init__(self, pool: Pool, cache: ProductListCache, reservation_ttl_seconds: int) -> None:
        self.pool = pool
        self.cache = cache
        self.reservation_ttl_seconds = reservation_ttl_seconds

    # catalogue reads

    async def list_products(self, query: ProductQuery) -> str:
        """The page of `query` as JSON (from the cache when it is current)."""

        async def build() -> str:
            async with self.pool.connection() as conn:
                rows = await repo.list_products(conn, query)
            next_cursor = None
            if query.ids is None and len(rows) > query.limit:
                rows = rows[: query.limit]
                last = rows[-1]
                next_cursor = encode_cursor(last.name, str(last.id))
            items = [ProductOut.model_validate(row) for row in rows]
            page = ProductPage(items=items, next_cursor=next_cursor)
            return page.model_dump_json(by_alias=True)

        return await self.cache.get_or_build(query, build)

    async def get_product(self, product_id: str, *, admin_view: bool = False) -> ProductOut:
        """A product; a deactivated one exists for admins only (see `ProductQuery`)."""
        valid_id = _valid_id(product_id)
        async with self.pool.connection() as conn:
            row = await repo.get_product(conn, valid_id)
        if row is None or not (row.active or admin_view):
            raise ProductNotFound(product_id)
        return ProductOut.model_validate(row)

    async def get_stock(self, product_id: str) -> StockLevelOut:
        valid_id = _valid_id(product_id)
        async with self.pool.connection() as conn:
            row = await repo.get_stock(conn, valid_id)
        if row is None:
            raise ProductNotFound(product_id)
        return StockLevelOut.model_validate(row)

    async def list_adjustments(self, product_id: str, limit: int = 100) -> list[AdjustmentOut]:
        valid_id = _valid_id(product_id)
        async with self.pool.connection() as conn:
            if await repo.get_stock(conn, valid_id) is None:
                raise ProductNotFound(product_id)
            rows = await repo.list_adjustments(conn, valid_id, limit)
        return [AdjustmentOut.model_validate(row) for row in rows]

    # catalogue changes (admin)

    async def create_product(self, new: ProductCreate, actor: Principal) -> ProductOut:
        async with self.pool.connection() as conn, conn.transaction():
            product_id = await repo.insert_product(conn, new.to_new_product())
            if product_id is None:
                raise SkuTaken(new.sku)
            await repo.add_adjustment(
                conn, product_id, 0, new.initial_stock, "initial stock", actor.user_id, actor.email
            )
            row = await repo.get_product(conn, product_id)
        await self.cache.invalidate(catalogue=True)
        assert row is not None
        log.info("product created", extra={"product_id": product_id, "sku": new.sku})
        return ProductOut.model_validate(row)

    async def update_product(
        self, product_id: str, patch: ProductPatch, if_match: int | None
    ) -> ProductOut:
        valid_id = _valid_id(product_id)
        changes = patch.changes()
        async with self.pool.connection() as conn, conn.transaction():
            row = await repo.lock_product(conn, valid_id)
            if row is None:
                raise ProductNotFound(product_id)
            if if_match is not None and if_match != row.version:
                raise PreconditionFailed(row.version)
            if patch.version is not None and patch.version != row.version:
                raise VersionMismatch(row.version)
            changes = {k: v for k, v in changes.items() if getattr(row, k) != v}
            if not changes:
                return ProductOut.model_validate(row)
            try:
                await repo.update_product(conn, valid_id, changes)
            except UniqueViolation:
                raise SkuTaken(str(changes.get("sku"))) from None
            row = await repo.get_product(conn, valid_id)
        await self.cache.invalidate(catalogue=True)
        assert row is not None
        log.info("product updated", extra={"product_id": valid_id, "fields": sorted(changes)})
        return ProductOut.model_validate(row)

    async def set_stock(
        self, product_id: str, on_hand: int, reason: str, actor: Principal
    ) -> StockLevelOut:
        valid_id = _valid_id(product_id)
        async with self.pool.connection() as conn, conn.transaction():
            current = await repo.lock_stock(conn, valid_id)
            if current is None:
                raise ProductNotFound(product_id)
            if on_hand < current.reserved:
                raise BelowReserved(on_hand, current.reserved)
            row = await repo.set_on_hand(conn, valid_id, on_hand)
            await repo.add_adjustment(
                conn, valid_id, current.on_hand, on_hand, reason, actor.user_id, actor.email
            )
        await self.cache.invalidate()
        log.info(
            "stock set", extra={"product_id": valid_id, "old": current.on_hand, "new": on_hand}
        )
        return StockLevelOut.model_validate(row)

    # reservations (on the consumer's connection)

    async def reserve_many(
        self, conn: DictConnection, events: Sequence[Consumed]
    ) -> list[Applied | None]:
        """Reserve every line of each new order (order.created events, in their order) or none
        of its lines; answer each with confirmed or failed.

        The orders whose lines are well-formed are tried together first: one statement
        (`reserve_all_if_available`) reserves them all when the units suffice for all of them.
        It dedupes itself: a copy of an order finds its reservation recorded. When the units
        fall short, each is tried on its own, in the events' order, so an earlier order comes
        first. What is left (a refusal, an order known already, a redelivery, a malformed line)
        takes the checked path, in a transaction that claims the event's id.

        On the consumer's autocommit connection (a lone event, or a group: the handler's
        `groups_in_one_statement`), the statement commits by itself, and most groups are that
        statement alone. What it leaves to do for more than one event runs in one transaction
        opened here, as does a whole group with a malformed or repeated order in it: a failure
        then keeps none of it. The statement's own reservations stay committed; they leave
        work behind only when some orders were recorded already (a group redelivered in part),
        and if that work fails, the redelivery finds them recorded and their after-commit
        effects (the product cache made stale, the counts) are not run again: the cache's
        `PRODUCT_CACHE_TTL_SECONDS` bounds how stale it stays."""
        expires_at = self._expires_at()
        lines_of = [merge_lines(consumed.event.data.items) for consumed in events]
        wanted: dict[str, tuple[Consumed, repo.NewReservation]] = {}
        for consumed, lines in zip(events, lines_of, strict=True):
            order: OrderCreated = consumed.event.data
            if order.order_id not in wanted and _well_formed(lines):
                reservation = _reservation(order, lines, expires_at, consumed.trace_context)
                wanted[order.order_id] = (consumed, reservation)
        together = [reservation for _, reservation in wanted.values()]
        whole = conn.autocommit and len(together) < len(events)
        async with AsyncExitStack() as atomic:
            if whole:  # a malformed or repeated order: the whole group in one transaction
                await atomic.enter_async_context(conn.transaction())
            reserved = await repo.reserve_all_if_available(conn, together) if together else set()
            if conn.autocommit and not whole and len(events) - len(reserved) > 1:
                await atomic.enter_async_context(conn.transaction())  # the rest, together
            return await self._answers(conn, events, lines_of, wanted, reserved)

    async def _answers(
        self,
        conn: DictConnection,
        events: Sequence[Consumed],
        lines_of: list[list[RequestedLine]],
        wanted: dict[str, tuple[Consumed, repo.NewReservation]],
        reserved: set[str],
    ) -> list[Applied | None]:
        """Each event's answer once the orders of `wanted` were tried together: confirmed for
        one `reserved`; when none was, each tried on its own; the rest on the checked path."""
        alone = not reserved and len(wanted) > 1
        results: list[Applied | None] = []
        for consumed, lines in zip(events, lines_of, strict=True):
            found = wanted.get(consumed.event.data.order_id)
            mine = found[1] if found is not None and found[0] is consumed else None
            with consumed.active():
                if mine is not None and (
                    mine.order_id in reserved
                    or (alone and await repo.reserve_all_if_available(conn, [mine]))
                ):
                    log.debug("order reserved", extra={"lines": len(lines)})
                    results.append(self._applied("confirmed"))
                else:
                    results.append(await self._reserve_claimed(conn, consumed, lines))
        return results

    async def _reserve_claimed(
        self, conn: DictConnection, consumed: Consumed, lines: list[RequestedLine]
    ) -> Applied | None:
        """The checked path, in a transaction that claims the event's id: None if it was
        claimed before."""
        async with conn.transaction():
            if not await claim_events(conn, [(consumed.event.id, ORDER_CREATED)]):
                return None
            return await self._reserve_checked(conn, consumed.event.data, lines)

    async def _reserve_checked(
        self, conn: DictConnection, order: OrderCreated, lines: list[RequestedLine]
    ) -> Applied | None:
        """Reserve an order's lines with the order locked and every line checked first; None
        for an order.created applied before (the order is known, and not as a tombstone)."""
        await repo.lock_order(conn, order.order_id)
        known = await repo.get_reservation(conn, order.order_id)
        if known is not None and known.status != "CANCELLED":
            return None
        if known is not None:
            log.info("order cancelled before it arrived; nothing to reserve")
            return self._applied("ignored")
        lockable = [line.product_id for line in lines if parse_product_id(line.product_id)]
        levels = await repo.lock_stock_levels(conn, lockable)
        refusals = decide_reservation(lines, levels)
        if refusals:
            reason = refusal_summary(refusals, len(lines))
            await repo.insert_reservation(
                conn, order.order_id, order.user_id, "REFUSED", order.version, reason=reason
            )
            failed = OrderFailed(
                order_id=order.order_id,
                user_id=order.user_id,
                version=order.version,
                reason=reason,
                lines=refusals,
            )
            await add_to_outbox(
                conn, ORDER_FAILED, event(EVENT_SOURCE, ORDER_FAILED, order.order_id, failed)
            )
            log.info("order refused", extra={"reason": reason})
            return self._applied("failed", {refusal.reason for refusal in refusals})
        reservation = _reservation(order, lines, self._expires_at())
        if not await repo.reserve_all_if_available(conn, [reservation]):
            # The lines are locked and were checked in this transaction: a bug, not a race.
            raise RuntimeError("a reservation checked under its locks did not fit")
        log.debug("order reserved", extra={"lines": len(lines)})
        return self._applied("confirmed")

    def _expires_at(self) -> datetime:
        """When a reservation made now expires (order.confirmed carries it)."""
        return datetime.now(UTC) + timedelta(seconds=self.reservation_ttl_seconds)

    async def release(self, conn: DictConnection, change: OrderStatusChanged) -> Applied:
        """An order was cancelled: give its units back, or remember it if it is not known yet."""
        await repo.lock_order(conn, change.order_id)
        known = await repo.get_reservation(conn, change.order_id)
        if known is None:
            await repo.insert_reservation(
                conn,
                change.order_id,
                change.user_id,
                "CANCELLED",
                change.version,
                reason="cancelled before it was seen",
            )
            log.info("tombstone for an order cancelled before it was created")
            return self._applied("tombstoned")
        if known.status != "RESERVED":
            log.info("cancelled order holds no reservation", extra={"status": known.status})
            return self._applied("ignored")
        await repo.lock_reserved_stock(conn, change.order_id)
        await repo.release_stock(conn, change.order_id)
        await repo.set_reservation_status(
            conn, change.order_id, "RELEASED", change.version, "cancelled"
        )
        log.info("reservation released (order cancelled)")
        return self._applied("released")

    async def commit(self, conn: DictConnection, change: OrderStatusChanged) -> Applied:
        """An order was shipped: its reserved units leave the warehouse."""
        await repo.lock_order(conn, change.order_id)
        known = await repo.get_reservation(conn, change.order_id)
        status = known.status if known else None
        if status == "RESERVED":
            await repo.lock_reserved_stock(conn, change.order_id)
            await repo.commit_stock(conn, change.order_id)
        elif status == "RELEASED":
            # Shipped while its reservation expired: the goods still left, so count them out.
            log.warning("shipped order's reservation was already released; committing anyway")
            await repo.lock_reserved_stock(conn, change.order_id)
            await repo.commit_unreserved_stock(conn, change.order_id)
        else:
            log.warning("shipped order has no reservation to commit", extra={"status": status})
            return self._applied("ignored")
        await repo.set_reservation_status(conn, change.order_id, "COMMITTED", change.version, None)
        log.info("reservation committed (order shipped)")
        return self._applied("committed")

    def _applied(self, outcome: Outcome, refused_for: Collection[str] = ()) -> Applied:
        """An applied event's outcome and its after-commit effects: the product cache is made
        stale when stock changed, and the reservation outcome (and a refusal's reasons) is
        counted."""
        effects: list[Effect] = []
        if outcome in STOCK_CHANGING_OUTCOMES:
            effects.append(Coalesced(PRODUCT_CACHE_STALE, self.cache.stock_changed))
        if outcome in RESERVATION_OUTCOMES:
            effects.append(partial(_count_reservation, outcome))
        if refused_for:
            effects.append(partial(_count_refusals, frozenset(refused_for)))
        return Applied(outcome, tuple(effects))

    async def expire_due(self) -> int:
        """Release every reservation past its expiry; returns how many were released."""
        released = 0
        while True:
            async with self.pool.connection() as conn:
                due = await repo.due_reservations(conn, SWEEP_BATCH)
            released_now = 0
            for order_id in due:
                try:
                    if await self._expire(order_id):
                        released_now += 1
                        RESERVATIONS.labels("expired").inc()
                except Exception:  # one broken reservation must not hold back the others
                    log.exception(
                        "could not release an expired reservation", extra={"order_id": order_id}
                    )
            if released_now:
                released += released_now
                await self.cache.stock_changed()
            # Another batch only if this one made progress: what failed is retried next round.
            if len(due) < SWEEP_BATCH or not released_now:
                return released

    async def _expire(self, order_id: str) -> bool:
        async with self.pool.connection() as conn, conn.transaction():
            await repo.lock_order(conn, order_id)
            known = await repo.get_reservation(conn, order_id)
            now = await _database_now(conn)
            if (
                known is None
                or known.status != "RESERVED"
                or known.expires_at is None  # never so while RESERVED
                or known.expires_at > now
            ):
                return False  # another replica, a cancel or a ship got there first
            await repo.lock_reserved_stock(conn, order_id)
            await repo.release_stock(conn, order_id)
            await repo.set_reservation_status(
                conn, order_id, "RELEASED", known.order_version, "expired"
            )
            expired = ReservationExpired(
                order_id=order_id,
                user_id=known.user_id,
                version=known.order_version,
                expired_at=known.expires_at,
            )
            await add_to_outbox(
                conn,
                RESERVATION_EXPIRED,
                event(EVENT_SOURCE, RESERVATION_EXPIRED, order_id, expired),
            )
        log.info("reservation expired", extra={"order_id": order_id})
        return True


def _valid_id(product_id: str) -> str:
    """The product id in the database's spelling; `ProductNotFound` if it is not a UUID."""
    valid_id = parse_product_id(product_id)
    if valid_id is None:
        raise ProductNotFound(product_id)
    return valid_id


async def _count_reservation(outcome: str) -> None:
    RESERVATIONS.labels(outcome).inc()


async def _count_refusals(reasons: frozenset[str]) -> None:
    for reason in reasons:
        RESERVATION_FAILURES.labels(reason).inc()


async def _database_now(conn: DictConnection) -> datetime:
    cursor = await conn.execute("SELECT now() AS now")
    row = await cursor.fetchone()
    assert row is not None
    now: datetime = row["now"]
    return now
