"""The notifications service's decisions: notify on order events, the in-app center, the
preferences and the delivery trail.

A consumed event is applied by one statement on the consumer shell's connection
(kit/consumer.py), which commits by itself, or, for a group of events the shell hands over at
once, by one statement per turn of the group's orders, in one transaction: the stale rule
(`order_versions`), one in-app notification, and one delivery row per enabled channel, each
`pending` with its message. The channels and their recipients come from the user's preferences
as this process knows them (known_preferences.py); the statement writes nothing for an event
whose user's stored ones are newer, and the event is made again from those.

Nothing is published there: the delivery rows are an outbox that `DeliveryOutbox` hands to the
kit's `RabbitRelay` after commit, which publishes with confirms and marks them `queued`
(kit/rabbit_outbox.py). Each delivery row keeps the consumed event's trace context, so the
relay publishes its message in the order's trace and the channel worker's span continues it
(services/kit/tracing.py). The live pushes to the user's Socket.IO room run after commit on the
after-commit runner; the unread count is read when the push runs, so the last push a user gets
counts every committed change, and the pushes queued together read every count among them in
one statement.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import socketio

from services.kit.after_commit import AfterCommit, Batched, Effect
from services.kit.consumer import Applied
from services.kit.db import DictConnection, Pool, autocommit
from services.kit.ids import new_id
from services.kit.live import NOTIFICATION_CREATED, NOTIFICATION_UNREAD, push_to_user
from services.kit.logs import order_id_var
from services.kit.pagination import MalformedCursor, decode_cursor, encode_cursor
from services.kit.rabbit import Outgoing
from services.kit.rabbit_outbox import OutgoingMessage
from services.kit.tokens import Principal
from services.notifications import dead_letters as dlq
from services.notifications import metrics
from services.notifications import repository as repo
from services.notifications.domain import (
    Channel,
    OrderFacts,
    Preferences,
    enabled_channels,
    in_app_text,
    recipient,
)
from services.notifications.errors import (
    DeadLetterNotFound,
    DeadLetterResolved,
    InvalidCursor,
    NotificationNotFound,
    NotReplayable,
)
from services.notifications.known_preferences import KnownPreferences, PreferencesCache
from services.notifications.messages import (
    NotificationMessage,
    first_attempt,
    message_headers,
    template_data,
)
from services.notifications.schemas import NotificationOut
from services.notifications.topology import WORK_QUEUES

log = logging.getLogger(__name__)
RELAY_CHANNEL = "deliveries"
"""The NOTIFY channel (per schema) that wakes the delivery relay."""


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[repo.NotificationRow]
    next_cursor: str | None
    unread_count: int


@dataclass(frozen=True, slots=True)
class PreferencesView:
    preferences: Preferences
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class Trail:
    order_id: uuid.UUID
    notified_version: int | None
    notifications: list[tuple[repo.NotificationRow, list[repo.DeliveryRow]]]


@dataclass(frozen=True, slots=True)
class LivePush:
    """A push to a user's room that carries the user's unread count."""

    user_id: str
    event: str
    payload: dict[str, Any]


class LivePushes:
    """Builds the after-commit effects that push to a user's Socket.IO room.

    Every push carries the user's unread count, read when the push runs: the pushes queued
    together run together (`Batched`), with one read of every user's count among them.
    """

    def __init__(self, emitter: socketio.AsyncRedisManager, pool: Pool) -> None:
        self.emitter = emitter
        self.pool = pool

    def created(self, row: repo.NotificationRow) -> Effect:
        """The new notification with the user's unread count: one push for both."""
        payload = NotificationOut.model_validate(row).model_dump(mode="json", by_alias=True)
        return Batched(
            self.push_notifications, LivePush(row.user_id, NOTIFICATION_CREATED, payload)
        )

    def unread(self, user_id: str) -> Effect:
        """The user's unread count, after a read or a read-all."""
        return Batched(
            self.push_notifications, LivePush(user_id, NOTIFICATION_UNREAD, {"userId": user_id})
        )

    async def push_notifications(self, pushes: list[LivePush]) -> None:
        # Counted when the pushes run, after commit: the last push a user gets counts every
        # change committed before it. One read: no transaction around it.
        async with autocommit(self.pool) as conn:
            counts = await repo.unread_counts(conn, list(dict.fromkeys(p.user_id for p in pushes)))
        for push in pushes:
            await push_to_user(
                self.emitter,
                push.user_id,
                push.event,
                {**push.payload, "unreadCount": counts[push.user_id]},
            )


@dataclass(frozen=True, slots=True)
class ReadDelivery:
    """A delivery as the relay read it: its row's `updated_at` then, and its channel."""

    id: uuid.UUID
    updated_at: datetime
    channel: str


class DeliveryOutbox:
    """The pending deliveries as the kit's RabbitRelay publishes them (an `OutboxSource`; a
    row's key is its `ReadDelivery`). A delivery the broker confirmed counts as queued."""

    async def pending(
        self, conn: DictConnection, limit: int, confirmed: Sequence[ReadDelivery]
    ) -> Sequence[OutgoingMessage]:
        rows = await repo.next_deliveries(conn, limit, [(d.id, d.updated_at) for d in confirmed])
        _count_queued(confirmed)
        return [
            OutgoingMessage(
                key=ReadDelivery(row.id, row.updated_at, row.channel),
                message=Outgoing(
                    routing_key=row.queue,
                    body=row.payload,
                    message_id=str(row.id),
                    headers=message_headers(row.channel, row.event_type),
                ),
                trace_context=row.trace_context,
            )
            for row in rows
        ]

    async def confirmed(self, conn: DictConnection, keys: Sequence[ReadDelivery]) -> None:
        await repo.mark_queued(conn, [(d.id, d.updated_at) for d in keys])
        _count_queued(keys)


def _count_queued(confirmed: Sequence[ReadDelivery]) -> None:
    for delivery in confirmed:
        metrics.DELIVERIES.labels(delivery.channel, "queued").inc()


@dataclass(frozen=True, slots=True)
class Notified:
    """A consumed order event to notify: its id, what it says, and its trace."""

    event_id: str
    facts: OrderFacts
    trace_context: Mapping[str, str] | None


@dataclass(frozen=True, slots=True)
class Turns:
    """How a group's events are recorded: `turns[k]` holds the places of each order's k-th
    event by version; `copies` the places of events whose version an earlier event of their
    order in the group has already (a redelivered copy), stale whatever the statement finds."""

    turns: list[list[int]]
    copies: list[int]


def _turns(events: Sequence[Notified]) -> Turns:
    """The events' places in turns: each order's events in version order, whatever order they
    were fetched in (an order's creation and its confirmation come from two topics, and a
    fetch may hand over the confirmation first), its first in the first turn, its second in the
    second, and so on; the orders in the order of their first event."""
    by_order: dict[str, list[int]] = {}
    for i, event in enumerate(events):
        by_order.setdefault(event.facts.order_id, []).append(i)
    turns: list[list[int]] = []
    copies: list[int] = []
    for places in by_order.values():
        places.sort(key=lambda i: events[i].facts.version)  # stable: a copy after its original
        turn = 0
        for n, i in enumerate(places):
            if n and events[i].facts.version == events[places[n - 1]].facts.version:
                copies.append(i)
                continue
            if turn == len(turns):
                turns.append([])
            turns[turn].append(i)
            turn += 1
    return Turns(turns, sorted(copies))


def _stale(facts: OrderFacts) -> Applied:
    """A stale event's outcome: a copy, or an event older than one of its order notified
    before (a creation fetched after its confirmation had been recorded in an earlier group).
    Counted, and logged only at DEBUG."""
    event_type = str(facts.event_type)
    metrics.EVENTS.labels(event_type, "stale").inc()
    token = order_id_var.set(facts.order_id)
    log.debug("stale event suppressed", extra={"topic": event_type, "version": facts.version})
    order_id_var.reset(token)
    return Applied("stale")


class PreferencesChanging(RuntimeError):
    """The user's preferences changed under every attempt to notify with them (the consumer
    retries the event)."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"preferences of user {user_id} changed {PREFERENCE_READS} times")


PREFERENCE_READS = 3
"""How many times an event reads preferences that changed under it before it fails."""


class NotificationService:
    def __init__(
        self,
        pool: Pool,
        live: LivePushes,
        after_commit: AfterCommit,
        preferences: PreferencesCache,
    ) -> None:
        self.pool = pool
        self.live = live
        self.after_commit = after_commit
        self.preferences = preferences

    # --- consumed events ------------------------------------------------------------------

    async def notify(self, conn: DictConnection, events: Sequence[Notified]) -> list[Applied]:
        """Apply order events on the consumer's connection: the first event of each order in
        one statement, the next of each in another, and so on (a statement
        moves an order's newest version once). Each is made from its user's preferences as this
        process knows them; the events whose user saved others since (the statement wrote
        nothing for them) are read again and recorded before any later event of their order.
        An order's events go in version order (`_turns`); a copy of one in the group is stale
        before any statement, neither made nor written."""
        outcomes: list[Applied | None] = [None] * len(events)
        planned = _turns(events)
        for turn in planned.turns:
            for _ in range(PREFERENCE_READS):
                made = [await self._made(conn, events[i]) for i in turn]
                recorded = await repo.record_notifications(conn, made)
                changed = []
                for i, record, result in zip(turn, made, recorded, strict=True):
                    if result.current:
                        outcomes[i] = self._outcome(events[i].facts, record, result.newer)
                    else:
                        changed.append(i)
                        self.preferences.drop(events[i].facts.user_id)
                if not changed:
                    break
                turn = changed
            else:
                raise PreferencesChanging(events[turn[0]].facts.user_id)
        for i in planned.copies:
            outcomes[i] = _stale(events[i].facts)
        applied = [outcome for outcome in outcomes if outcome is not None]
        assert len(applied) == len(events), "every turn records or refuses each of its events"
        return applied

    async def _made(self, conn: DictConnection, event: Notified) -> repo.ToRecord:
        known = self.preferences.get(event.facts.user_id)
        if known is None:
            known = await self._read_preferences(conn, event.facts.user_id)
        notification, deliveries = _notification(
            event.event_id, event.facts, known.preferences, datetime.now(UTC)
        )
        return repo.ToRecord(notification, deliveries, known.saved_at, event.trace_context)

    def _outcome(self, facts: OrderFacts, record: repo.ToRecord, newer: bool) -> Applied:
        if not newer:
            return _stale(facts)
        event_type = str(facts.event_type)
        effects: tuple[Effect, ...] = (
            Batched(_count, (event_type, record.deliveries)),
            self.live.created(record.notification),
        )
        return Applied("notified", effects)

    async def _read_preferences(self, conn: DictConnection, user_id: str) -> KnownPreferences:
        stored = await repo.get_preferences(conn, user_id)
        known = (
            KnownPreferences(stored.preferences, stored.updated_at)
            if stored is not None
            else KnownPreferences(Preferences(), None)
        )
        self.preferences.put(user_id, known)
        return known

    # --- the in-app center ----------------------------------------------------------------

    async def list_notifications(
        self, principal: Principal, *, cursor: str | None, limit: int
    ) -> Page:
        after = _decode(cursor) if cursor else None
        async with self.pool.connection() as conn:
            rows = await repo.list_notifications(
                conn, principal.user_id, after=after, limit=limit + 1
            )
            unread = await repo.unread_count(conn, principal.user_id)
        page, next_cursor = _paged(rows, limit)
        return Page(page, next_cursor, unread)

    async def unread_count(self, principal: Principal) -> int:
        async with self.pool.connection() as conn:
            return await repo.unread_count(conn, principal.user_id)

    async def mark_read(
        self, principal: Principal, notification_id: uuid.UUID
    ) -> repo.NotificationRow:
        async with self.pool.connection() as conn:
            row = await repo.mark_read(conn, principal.user_id, notification_id)
        if row is None:
            raise NotificationNotFound(notification_id)
        self.after_commit.submit((self.live.unread(principal.user_id),))
        return row

    async def mark_all_read(self, principal: Principal) -> int:
        async with self.pool.connection() as conn:
            marked = await repo.mark_all_read(conn, principal.user_id)
        self.after_commit.submit((self.live.unread(principal.user_id),))
        return marked

    # --- preferences ----------------------------------------------------------------------

    async def get_preferences(self, principal: Principal) -> PreferencesView:
        async with self.pool.connection() as conn:
            stored = await repo.get_preferences(conn, principal.user_id)
        if stored is None:
            return PreferencesView(Preferences(), None)
        return PreferencesView(stored.preferences, stored.updated_at)

    async def put_preferences(
        self, principal: Principal, preferences: Preferences
    ) -> PreferencesView:
        async with self.pool.connection() as conn:
            updated_at = await repo.put_preferences(conn, principal.user_id, preferences)
        self.preferences.put(principal.user_id, KnownPreferences(preferences, updated_at))
        return PreferencesView(preferences, updated_at)

    # --- admin ----------------------------------------------------------------------------

    async def dead_letters(
        self,
        *,
        status: str | None,
        channel: str | None,
        order_id: uuid.UUID | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[dlq.DeadLetterRow], str | None]:
        after = _decode(cursor) if cursor else None
        async with self.pool.connection() as conn:
            rows = await dlq.list_dead_letters(
                conn,
                status=status,
                channel=channel,
                order_id=order_id,
                after=after,
                limit=limit + 1,
            )
        return _paged(rows, limit)

    async def replay(self, admin: Principal, dead_letter_id: uuid.UUID) -> dlq.DeadLetterRow:
        """Send a dead letter's delivery again: back to the outbox, published by the relay."""
        async with self.pool.connection() as conn, conn.transaction():
            row = await self._open_dead_letter(conn, dead_letter_id)
            if row.delivery_id is None:
                raise NotReplayable("it is not a delivery the service knows (a malformed message)")
            try:
                message = first_attempt(row.payload)
            except ValueError:
                raise NotReplayable("its message cannot be read") from None
            if not await dlq.requeue_delivery(conn, row.delivery_id, message):
                raise NotReplayable("its delivery is not dead any more")
            resolved = await dlq.resolve(conn, dead_letter_id, "replayed", _actor(admin))
        log.info("dead letter replayed", extra={"dead_letter_id": str(dead_letter_id)})
        return resolved

    async def discard(self, admin: Principal, dead_letter_id: uuid.UUID) -> dlq.DeadLetterRow:
        async with self.pool.connection() as conn, conn.transaction():
            row = await self._open_dead_letter(conn, dead_letter_id)
            if row.delivery_id is not None:
                await dlq.discard_delivery(conn, row.delivery_id)
            resolved = await dlq.resolve(conn, dead_letter_id, "discarded", _actor(admin))
        log.info("dead letter discarded", extra={"dead_letter_id": str(dead_letter_id)})
        return resolved

    async def _open_dead_letter(
        self, conn: DictConnection, dead_letter_id: uuid.UUID
    ) -> dlq.DeadLetterRow:
        row = await dlq.get_for_update(conn, dead_letter_id)
        if row is None:
            raise DeadLetterNotFound(dead_letter_id)
        if row.status != "dead":
            raise DeadLetterResolved(row.status)
        return row

    async def count_dead_letters(self) -> int:
        """Sample the dead letters per status into the `notifications_dead_letters` gauge."""
        async with self.pool.connection() as conn:
            counts = await dlq.counts(conn)
        for status, count in counts.items():
            metrics.DEAD_LETTERS.labels(status).set(count)
        return 0

    async def order_trail(self, order_id: uuid.UUID) -> Trail:
        async with self.pool.connection() as conn:
            notifications = await repo.order_notifications(conn, order_id)
            deliveries = await repo.deliveries_of(conn, [n.id for n in notifications])
            version = await repo.order_version(conn, order_id)
        return Trail(order_id, version, [(n, deliveries[n.id]) for n in notifications])


def _notification(
    event_id: str, facts: OrderFacts, preferences: Preferences, created_at: datetime
) -> tuple[repo.NotificationRow, list[repo.NewDelivery]]:
    """The in-app notification of `facts` and one delivery per channel `preferences` enable,
    each with its message, or skipped when the channel has no recipient."""
    title, body = in_app_text(facts)
    data = template_data(facts, title, body)
    notification = repo.NotificationRow(
        id=new_id(),
        user_id=facts.user_id,
        order_id=uuid.UUID(facts.order_id),
        event_id=uuid.UUID(event_id),
        event_type=facts.event_type,
        order_version=facts.version,
        title=title,
        body=body,
        data=data.model_dump(mode="json", by_alias=True),
        read_at=None,
        created_at=created_at,
    )
    deliveries: list[repo.NewDelivery] = []
    for channel in enabled_channels(facts.event_type, preferences):
        delivery_id = new_id()
        address = recipient(channel, preferences, facts.user_id)
        if address is None:
            deliveries.append(
                repo.NewDelivery(
                    delivery_id,
                    channel,
                    WORK_QUEUES[channel],
                    None,
                    None,
                    reason=f"no {_address_kind(channel)} in the user's preferences",
                )
            )
            continue
        message = NotificationMessage(
            delivery_id=delivery_id,
            notification_id=notification.id,
            event_id=notification.event_id,
            channel=channel,
            event_type=facts.event_type,
            order_id=facts.order_id,
            user_id=facts.user_id,
            recipient=address,
            created_at=created_at,
            data=data,
        )
        deliveries.append(
            repo.NewDelivery(
                delivery_id, channel, WORK_QUEUES[channel], address, message.to_bytes()
            )
        )
    return notification, deliveries


def _actor(principal: Principal) -> str:
    return f"admin:{principal.user_id}"


def _address_kind(channel: Channel) -> str:
    return "email address" if channel is Channel.EMAIL else "phone number"


class _Keyed(Protocol):
    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> uuid.UUID: ...


K = TypeVar("K", bound=_Keyed)


def _paged(rows: list[K], limit: int) -> tuple[list[K], str | None]:
    """The page of rows fetched with `limit + 1`, and the cursor of the next one if any."""
    page = rows[:limit]
    if len(rows) <= limit:
        return page, None
    return page, encode_cursor(page[-1].created_at.isoformat(), str(page[-1].id))


def _decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    def parse(created_at: str, notification_id: str) -> tuple[datetime, uuid.UUID]:
        return datetime.fromisoformat(created_at), uuid.UUID(notification_id)

    try:
        return decode_cursor(cursor, parse)
    except MalformedCursor as exc:
        raise InvalidCursor() from exc


async def _count(notified: list[tuple[str, Sequence[repo.NewDelivery]]]) -> None:
    """Count notified events (event type, deliveries), those queued together in one effect."""
    for event_type, deliveries in notified:
        metrics.EVENTS.labels(event_type, "notified").inc()
        for delivery in deliveries:
            outcome = "recorded" if delivery.payload is not None else "skipped"
            metrics.DELIVERIES.labels(str(delivery.channel), outcome).inc()
