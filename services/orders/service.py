"""The orders service's decisions: create, read, list, and change the status of orders.

Every change is one transaction: the order row (locked with SELECT ... FOR UPDATE), a timeline
entry for the new version, and, where other services must hear of it, an outbox event. Only
after COMMIT are the side effects handed to the after-commit runner (kit/after_commit.py):
metrics and the live Socket.IO push, which never hold up the request or the consumer; a push
that fails is logged and counted, the change stays.

The timeline entry's event id is the event that reports the change: the outbox event this
service emits (order.created, order.shipped, order.delivered, order.cancelled), or the consumed
inventory event for CONFIRMED and FAILED.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import socketio

from services.kit.after_commit import AfterCommit, Batched, Effect
from services.kit.consumer import Applied
from services.kit.db import DictConnection, Pool, autocommit
from services.kit.errors import DomainError, Forbidden
from services.kit.events import Envelope
from services.kit.groups import Failed, GroupedCalls
from services.kit.ids import new_id
from services.kit.live import OrderUpdate, push_order_update
from services.kit.metrics import labelled
from services.kit.order_events import (
    ORDER_CANCELLED,
    ORDER_CREATED,
    ORDER_DELIVERED,
    ORDER_SHIPPED,
    OrderCreated,
    OrderLine,
    OrderStatusChanged,
)
from services.kit.outbox import add_to_outbox, event, outbox_row
from services.kit.tokens import Principal
from services.orders import metrics
from services.orders import repository as repo
from services.orders.backlog import Backlog
from services.orders.catalogue import Catalogue
from services.orders.domain import (
    Actor,
    Cursor,
    PricedOrder,
    Status,
    admit_within_limits,
    can_transition,
    check_transition,
    decode_cursor,
    encode_cursor,
    price_order,
    request_fingerprint,
    sources_of,
)
from services.orders.errors import IdempotencyKeyReused, OrderNotFound, VersionMismatch
from services.orders.schemas import CreateOrderRequest
from services.orders.settings import Settings

log = logging.getLogger(__name__)
SOURCE = "/services/orders"

# The changes this service reports to others; CONFIRMED and FAILED are inventory's own events.
EMITTED_TOPICS: dict[Status, str] = {
    Status.SHIPPED: ORDER_SHIPPED,
    Status.DELIVERED: ORDER_DELIVERED,
    Status.CANCELLED: ORDER_CANCELLED,
}


@dataclass(frozen=True, slots=True)
class OrderView:
    order: repo.OrderRow
    lines: list[repo.LineRow]
    timeline: list[repo.TimelineRow]


@dataclass(frozen=True, slots=True)
class Created:
    view: OrderView
    replayed: bool


def _quantities(placement: repo.Placement) -> dict[str, int]:
    """The units a create asks per product (`price_order` makes one line per product)."""
    return {line.product_id: line.quantity for line in placement.priced.lines}


def _claimed_key(placement: repo.Placement) -> tuple[str, str] | None:
    """The user's key a create claims: two creates with one never share a group."""
    return (placement.user_id, placement.claim.key) if placement.claim else None


@dataclass(frozen=True, slots=True)
class Page:
    orders: list[tuple[repo.OrderRow, list[repo.LineRow]]]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Change:
    """A committed status change, with what the after-commit side effects need."""

    order: repo.OrderRow
    entry: repo.TimelineRow
    actor: Actor


class LiveUpdates:
    """Builds the after-commit effect that pushes an order update to its Socket.IO clients: one
    effect per change, so that each push runs in a span of its own order's trace."""

    def __init__(self, emitter: socketio.AsyncRedisManager) -> None:
        self.emitter = emitter

    def push(self, change: Change) -> Effect:
        update = OrderUpdate(
            order_id=str(change.order.id),
            user_id=change.order.user_id,
            status=change.order.status,
            version=change.order.version,
            time=change.entry.at,
            reason=change.entry.reason,
        )

        async def push_order() -> None:
            # A lost push is recovered by the client's order.sync; the change is committed.
            await push_order_update(self.emitter, update)

        return push_order


def actor_label(kind: Actor, principal: Principal | None = None) -> str:
    """Who made a change, as the timeline and the events name them."""
    if kind is Actor.INVENTORY or principal is None:
        return str(kind)
    return f"{'admin' if kind is Actor.ADMIN else 'user'}:{principal.user_id}"


class OrderService:
    def __init__(
        self,
        settings: Settings,
        pool: Pool,
        catalogue: Catalogue,
        live: LiveUpdates,
        after_commit: AfterCommit,
        backlog: Backlog,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.catalogue = catalogue
        self.live = live
        self.after_commit = after_commit
        self.backlog = backlog
        # Creates are placed in groups (kit/groups.py): one statement and one commit for those
        # that come while the group before them is placed (and, under load, within
        # CREATES_GATHER_MS of the group's first), with holding limits or without.
        # A group a value of one of them fails is placed again one by one.
        self.creates: GroupedCalls[repo.Placement, repo.Placed | None] = GroupedCalls(
            self._place_group,
            service=settings.service_name,
            name="creates",
            key=_claimed_key,
            alone_on=(psycopg.DataError, psycopg.IntegrityError),
            gather_ms=settings.creates_gather_ms,
        )

    # --- create ---------------------------------------------------------------------------

    async def create(
        self, principal: Principal, request: CreateOrderRequest, idempotency_key: str | None
    ) -> Created:
        """Place an order, or with an `Idempotency-Key` already used by this user answer with
        the order it placed.

        The statement that places the order claims the key, so a first request reads nothing
        before it. A retry finds the key taken (the statement writes nothing) and is answered
        with the key's order; so is one refused before the statement by the holding limits or
        pricing, since a replay adds no work. The backlog's refusal is the exception: it reads
        nothing, and a replay it refused is answered when the client retries.
        """
        quantities = request.quantities()
        address = request.shipping_address.model_dump(mode="json", by_alias=True)
        fingerprint = request_fingerprint(quantities, address)
        # The backlog refuses before any work, replays included (`PipelineBacklogged`).
        with self.backlog.admission():
            try:
                created = await self._create_new(
                    principal, quantities, address, fingerprint, idempotency_key
                )
            except DomainError:
                known = await self._known_key(principal, idempotency_key)
                if known is None:
                    raise
                return await self._replay(known, fingerprint)
        if created is not None:
            return created
        # A create with this key committed first: its order stands, ours was not written.
        self.backlog.not_written()
        known = await self._known_key(principal, idempotency_key)
        assert known is not None, "the key was found taken by a live record"
        return await self._replay(known, fingerprint)

    async def _known_key(
        self, principal: Principal, idempotency_key: str | None
    ) -> repo.IdempotencyRecord | None:
        """What the caller's key holds while it lives (None without a key)."""
        if idempotency_key is None:
            return None
        async with autocommit(self.pool) as conn:  # one read: no transaction around it
            return await repo.find_idempotency_key(
                conn,
                user_id=principal.user_id,
                key=idempotency_key,
                ttl_hours=self.settings.idempotency_key_ttl_hours,
            )

    async def _create_new(
        self,
        principal: Principal,
        quantities: dict[str, int],
        address: dict[str, Any],
        fingerprint: str,
        idempotency_key: str | None,
    ) -> Created | None:
        """The new order, or None when a live record holds the key (nothing was written)."""
        # Priced outside the statement: no row is held while inventory answers.
        priced = price_order(quantities, await self.catalogue.products(list(quantities)))
        order_id = uuid.uuid4()
        placed_at = datetime.now(UTC)
        created_id = str(new_id())
        created = outbox_row(
            ORDER_CREATED,
            _created_event(order_id, principal.user_id, priced, placed_at, created_id),
        )
        placement = repo.Placement(
            order_id=order_id,
            user_id=principal.user_id,
            priced=priced,
            shipping_address=address,
            placed_at=placed_at,
            actor=actor_label(Actor.OWNER, principal),
            created=created,
            claim=(
                repo.KeyClaim(idempotency_key, fingerprint) if idempotency_key is not None else None
            ),
        )
        # With the creates that came while the last group was placed (kit/groups.py).
        placed = await self.creates.call(placement)
        if placed is None:
            return None
        order, entry = placed

        metrics.ORDERS_CREATED.inc()
        labelled(metrics.ORDER_VALUE, priced.currency).observe(float(priced.total))
        self.after_commit.submit(self._effects(Change(order=order, entry=entry, actor=Actor.OWNER)))
        # One line per order only at DEBUG: counted by ORDERS_CREATED, kept in the timeline.
        log.debug("order created", extra={"order_id": str(order_id), "total": str(priced.total)})
        view = OrderView(order=order, lines=_line_rows(order_id, priced), timeline=[entry])
        return Created(view=view, replayed=False)

    async def _replay(self, known: repo.IdempotencyRecord, fingerprint: str) -> Created:
        if known.request_hash != fingerprint:
            raise IdempotencyKeyReused()
        async with self.pool.connection() as conn:
            view = await self._view(conn, known.order_id)
        assert view is not None
        metrics.IDEMPOTENT_REPLAYS.inc()
        return Created(view=view, replayed=True)

    async def _place_group(
        self, placements: Sequence[repo.Placement]
    ) -> list[repo.Placed | Failed | None]:
        """Place a group of creates in one statement. Without holding limits it commits by
        itself; with them, it runs in the transaction that locks the group's users and reads
        what they hold, and places only the creates the limits admit (`admit_within_limits`),
        each counted as if placed alone in turn; the others are refused."""
        ttl_hours = self.settings.idempotency_key_ttl_hours
        limits = self.settings.holding_limits
        if not limits.enforced:
            async with autocommit(self.pool) as conn:
                return list(await repo.place_orders(conn, placements, ttl_hours=ttl_hours))
        claims = [key for p in placements if (key := _claimed_key(p)) is not None]
        async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            held = await repo.lock_and_read_holdings(
                conn,
                sorted({p.user_id for p in placements}),
                sorted({line.product_id for p in placements for line in p.priced.lines}),
                limits,
                claims=claims,
                ttl_hours=ttl_hours,
            )
            # A create whose key a live record holds writes nothing (it is answered with the
            # key's order), so it is neither checked nor counted.
            new = [p for p in placements if _claimed_key(p) not in held.keys_taken]
            outcomes = admit_within_limits(
                limits, [(p.user_id, _quantities(p)) for p in new], held.by_user
            )
            refused = {
                p.order_id: refusal
                for p, refusal in zip(new, outcomes, strict=True)
                if refusal is not None
            }
            admitted = [p for p in new if p.order_id not in refused]
            placed = dict(
                zip(
                    (p.order_id for p in admitted),
                    await repo.place_orders(conn, admitted, ttl_hours=ttl_hours)
                    if admitted
                    else [],
                    strict=True,
                )
            )
        return [
            Failed(refused[p.order_id]) if p.order_id in refused else placed.get(p.order_id)
            for p in placements
        ]

    async def purge_idempotency_keys(self) -> int:
        """Forget Idempotency-Keys older than their time to live; returns how many."""
        async with self.pool.connection() as conn:
            return await repo.purge_idempotency_keys(
                conn, ttl_hours=self.settings.idempotency_key_ttl_hours
            )

    # --- reads ----------------------------------------------------------------------------

    async def get(self, principal: Principal, order_id: uuid.UUID) -> OrderView:
        async with self.pool.connection() as conn:
            view = await self._view(conn, order_id)
        if view is None or not _may_see(principal, view.order):
            raise OrderNotFound(order_id)
        return view

    async def timeline(
        self, principal: Principal, order_id: uuid.UUID, since_version: int
    ) -> list[repo.TimelineRow]:
        async with self.pool.connection() as conn:
            order = await repo.get_order(conn, order_id)
            if order is None or not _may_see(principal, order):
                raise OrderNotFound(order_id)
            return await repo.get_timeline(conn, order_id, since_version=since_version)

    async def list_orders(
        self,
        principal: Principal,
        *,
        statuses: Sequence[Status] = (),
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        text: str | None = None,
        user_id: str | None = None,
        cursor: str | None = None,
        limit: int = 20,
    ) -> Page:
        if not principal.is_admin:
            if user_id is not None and user_id != principal.user_id:
                raise Forbidden("Only admins may list other users' orders.")
            user_id = principal.user_id
        where = repo.OrderFilter(
            user_id=user_id,
            statuses=statuses,
            created_from=_aware(created_from),
            created_to=_aware(created_to),
            text=text or None,
        )
        after = decode_cursor(cursor) if cursor else None
        async with self.pool.connection() as conn:
            rows = await repo.list_orders(conn, where, after=after, limit=limit + 1)
            page = rows[:limit]
            lines = await repo.get_lines(conn, [row.id for row in page])
        next_cursor = None
        if len(rows) > limit:
            last = page[-1]
            next_cursor = encode_cursor(Cursor(created_at=last.created_at, id=last.id))
        return Page(orders=[(row, lines[row.id]) for row in page], next_cursor=next_cursor)

    async def _view(self, conn: DictConnection, order_id: uuid.UUID) -> OrderView | None:
        order = await repo.get_order(conn, order_id)
        if order is None:
            return None
        lines = (await repo.get_lines(conn, [order_id]))[order_id]
        return OrderView(order=order, lines=lines, timeline=await repo.get_timeline(conn, order_id))

    # --- changes over HTTP ----------------------------------------------------------------

    async def set_status(
        self,
        principal: Principal,
        order_id: uuid.UUID,
        target: Status,
        *,
        reason: str | None,
        expected_version: int | None,
    ) -> OrderView:
        """An admin's change (the admin role is checked by the endpoint)."""
        return await self._change_by_caller(
            principal, order_id, target, Actor.ADMIN, reason, expected_version
        )

    async def cancel(
        self,
        principal: Principal,
        order_id: uuid.UUID,
        *,
        reason: str | None,
        expected_version: int | None,
    ) -> OrderView:
        kind = Actor.ADMIN if principal.is_admin else Actor.OWNER
        return await self._change_by_caller(
            principal, order_id, Status.CANCELLED, kind, reason, expected_version
        )

    async def _change_by_caller(
        self,
        principal: Principal,
        order_id: uuid.UUID,
        target: Status,
        kind: Actor,
        reason: str | None,
        expected_version: int | None,
    ) -> OrderView:
        async with self.pool.connection() as conn:
            async with conn.transaction():
                order = await repo.lock_order(conn, order_id)
                if order is None or not _may_see(principal, order):
                    raise OrderNotFound(order_id)
                if expected_version is not None and expected_version != order.version:
                    raise VersionMismatch(expected_version, order.version)
                check_transition(order.status, target, kind)
                async with conn.pipeline():
                    change = await self._apply(
                        conn, order, target, kind, actor_label(kind, principal), reason
                    )
            view = await self._view(conn, order_id)
        assert view is not None
        self.after_commit.submit(self._effects(change))
        return view

    # --- changes from inventory's events --------------------------------------------------

    async def apply_inventory_event(
        self, conn: DictConnection, topic: str, outcome: InventoryOutcome
    ) -> Applied:
        """Apply a change of inventory's that emits an event of its own (a reservation that
        expired cancels the order, reported onwards as order.cancelled) on the consumer's
        connection, in the transaction that claimed its event id; a stale or foreign event
        changes nothing."""
        change = await self._apply_locked(conn, topic, _parse_uuid(outcome.order_id), outcome)
        return self._applied(change, outcome.target) if isinstance(change, Change) else change

    async def apply_answers(
        self, conn: DictConnection, answers: Sequence[Answer]
    ) -> list[Applied | None]:
        """Apply inventory's answers to creations (CONFIRMED, FAILED), in their order, on the
        consumer's connection: one statement moves every answered order that may move, each
        timeline entry carrying its answer's event id, which is how a redelivery is known
        (None: that very event moved the order already). An answer that moved nothing is
        looked up: a redelivery, or stale for the order's status, or for an unknown order."""
        moves = [
            repo.Move(
                order_id=_parse_uuid(answer.outcome.order_id),
                status=answer.outcome.target,
                sources=sources_of(answer.outcome.target, Actor.INVENTORY),
                reason=answer.outcome.reason,
                event_id=answer.event_id,
            )
            for answer in answers
        ]
        moved = await repo.move_many(conn, moves, actor=actor_label(Actor.INVENTORY))
        results: list[Applied | None] = []
        for seq, (answer, move) in enumerate(zip(answers, moves, strict=True)):
            if seq in moved:
                order, entry = moved[seq]
                change = Change(order=order, entry=entry, actor=Actor.INVENTORY)
                results.append(self._applied(change, move.status))
                continue
            found = await repo.order_with_event(conn, move.order_id, answer.event_id)
            if found is None:
                results.append(_refused(answer.topic, move.status, None))
            elif found[1]:
                results.append(None)  # this very event moved the order already: a redelivery
            else:
                results.append(_refused(answer.topic, move.status, found[0]))
        return results

    def _applied(self, change: Change, target: Status) -> Applied:
        """A committed change of inventory's: its outcome and after-commit effects."""
        effects = self._effects(change)
        if target is Status.CONFIRMED:
            waited = max((change.entry.at - change.order.created_at).total_seconds(), 0.0)
            effects = (Batched(_observe_confirmations, waited), *effects)
        return Applied(str(target), effects)

    async def _apply_locked(
        self, conn: DictConnection, topic: str, order_id: uuid.UUID, outcome: InventoryOutcome
    ) -> Change | Applied:
        """A change that emits an event of its own (a cancellation): the order locked and
        read first, for the event's facts."""
        order = await repo.lock_order(conn, order_id)
        if order is None or not can_transition(order.status, outcome.target, Actor.INVENTORY):
            return _refused(topic, outcome.target, order)
        async with conn.pipeline():
            return await self._apply(
                conn,
                order,
                outcome.target,
                Actor.INVENTORY,
                actor_label(Actor.INVENTORY),
                outcome.reason,
            )

    async def _apply(
        self,
        conn: DictConnection,
        order: repo.OrderRow,
        target: Status,
        kind: Actor,
        actor: str,
        reason: str | None,
    ) -> Change:
        """Move a locked order to `target` (already checked legal, and one this service
        reports: `EMITTED_TOPICS`) inside the caller's tx, with its event in the outbox.

        Only the order update is read back, so the caller may send this in a pipeline.
        """
        version = order.version + 1
        topic = EMITTED_TOPICS[target]
        changed = event(
            SOURCE,
            topic,
            str(order.id),
            OrderStatusChanged(
                order_id=str(order.id),
                user_id=order.user_id,
                version=version,
                status=target,
                previous_status=order.status,
                actor=actor,
                reason=reason,
                total=order.total,
                currency=order.currency,
            ),
        )
        await add_to_outbox(conn, topic, changed)
        moved = await repo.move_many(
            conn,
            [repo.Move(order.id, target, [order.status], reason, changed.id)],
            actor=actor,
        )
        assert moved, "the order is locked in the status it was read in"
        updated, entry = moved[0]
        return Change(order=updated, entry=entry, actor=kind)

    def _effects(self, change: Change) -> tuple[Effect, ...]:
        """What a committed change sets off: its count (run together with the counts queued
        with it) and the live push."""
        return (Batched(_count_transitions, change), self.live.push(change))


def _refused(topic: str, target: Status, order: repo.OrderRow | None) -> Applied:
    """What an event of inventory's that changes nothing did: it names an unknown order, or
    one whose status it is stale for."""
    if order is None:
        metrics.EVENTS_IGNORED.labels(topic, "unknown-order").inc()
        log.warning("event for an unknown order", extra={"topic": topic})
        return Applied("unknown-order")
    metrics.EVENTS_IGNORED.labels(topic, "stale").inc()
    log.info(
        "stale event ignored", extra={"topic": topic, "status": order.status, "wanted": target}
    )
    return Applied("stale")


async def _count_transitions(changes: list[Change]) -> None:
    for change in changes:
        labelled(metrics.TRANSITIONS, change.order.status, change.actor).inc()


async def _observe_confirmations(waited_seconds: list[float]) -> None:
    for waited in waited_seconds:
        metrics.CONFIRMATION_LATENCY.observe(waited)


@dataclass(frozen=True, slots=True)
class InventoryOutcome:
    """What one of inventory's events asks of an order: the status and the timeline reason."""

    order_id: str
    target: Status
    reason: str | None


@dataclass(frozen=True, slots=True)
class Answer:
    """One of inventory's answers to a creation, as consumed: its topic, event id and outcome."""

    topic: str
    event_id: str
    outcome: InventoryOutcome


def _created_event(
    order_id: uuid.UUID, user_id: str, priced: PricedOrder, created_at: datetime, event_id: str
) -> Envelope[Any]:
    """The order.created event of a new order (version 1)."""
    data = OrderCreated(
        order_id=str(order_id),
        user_id=user_id,
        version=1,
        items=[
            OrderLine(
                product_id=line.product_id,
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                unit_price=line.unit_price,
                line_total=line.line_total,
            )
            for line in priced.lines
        ],
        total=priced.total,
        currency=priced.currency,
        created_at=created_at,
    )
    return event(SOURCE, ORDER_CREATED, str(order_id), data, event_id=event_id)


def _line_rows(order_id: uuid.UUID, priced: PricedOrder) -> list[repo.LineRow]:
    """The lines as stored, without reading them back."""
    return [
        repo.LineRow(
            order_id=order_id,
            line_no=number,
            product_id=line.product_id,
            sku=line.sku,
            name=line.name,
            quantity=line.quantity,
            unit_price=line.unit_price,
            line_total=line.line_total,
        )
        for number, line in enumerate(priced.lines, start=1)
    ]


def _may_see(principal: Principal, order: repo.OrderRow) -> bool:
    return principal.is_admin or order.user_id == principal.user_id


def _aware(value: datetime | None) -> datetime | None:
    """Naive datetimes in filters are read as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _parse_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
