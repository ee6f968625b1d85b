"""The consumer shell: how every service applies a consumed event, once.

A service declares what it consumes in one table, `EVENT_HANDLERS: dict[topic, Handler]` in its
`handlers.py`: the data type each topic carries and the service-layer function that applies it.
`EventShell` does the rest for the messages the batch consumer hands it:

1. parse the CloudEvents envelope into the declared type (a message that cannot be parsed
   raises, so the consumer retries and then dead-letters it);
2. put the event's subject (the order id) in the log context;
3. open the unit of work: one transaction on the service's pool, in which the event id is
   claimed in `processed_events` (a redelivery finds it claimed: `duplicate`) and the
   service's function makes its change and writes any events it emits to the outbox. The
   transaction is pipelined: a statement whose answer the function does not read (an insert,
   an update without RETURNING) goes out without waiting for the database, BEGIN goes with the
   first statement and COMMIT with the last, so an event waits for the database only where it
   reads. A failed statement raises at the next read or at the commit, failing the event all
   the same; a function reads what it needs (`RETURNING`), never a cursor's `rowcount`, which
   a pipeline has only once it syncs;
4. after the commit, hand the effects the function returned (live push, cache invalidation)
   to the after-commit runner, which never blocks this loop;
5. trace it: a CONSUMER span, child of the trace context in the message's headers (the
   producing request's, carried through the outbox: kit/tracing.py), active while the handler
   runs, so the events it writes to the outbox and the effects it submits continue that trace;
6. count the outcome: `events_consumed_total{outcome=processed|duplicate|dead_lettered}`
   (dead letters are counted by the batch consumer), and time each event until its commit
   (`events_processing_seconds`).

A handler for which a redelivery changes nothing by itself (`Handler.dedupes_itself`:
analytics' event log, notifications' order versions, the orders timeline's event ids) is
claimed nothing for; a lone event of one whose change is also one statement
(`Handler.one_statement`: analytics, inventory's answers in orders) is that statement on an
autocommit connection, and so is a group whose `apply_many` changes it in one statement
whatever its size (`Handler.groups_in_one_statement`: the same two, and inventory's
reservations, which open a transaction of their own when the units fall short). A handler
that can apply a whole group at once, in fewer statements than one per event
(`Handler.apply_many`: analytics, notifications), gets the group in one call.

**Group commit.** When the consumer has several messages at once (it is behind, or events come
fast), `apply_group` applies a group of them, in offset order, in one transaction: one pool
checkout, one BEGIN and one COMMIT (one WAL flush) for the group instead of one of each per
event, and their outbox rows reach the relay together. The group's events are claimed in one
statement, the first one of the transaction (one round trip for the group, not one per event;
an event twice in a group is a duplicate the second time); each is then traced, counted and its
effects submitted as above; nothing takes effect before the group's commit. If
any event of the group fails, the whole transaction rolls back and the consumer applies the
group again one event per transaction (kit/kafka.py), where the failing event is retried and
dead-lettered on its own. A group whose handlers all share one `apply_many` is that one call
in the group's transaction instead, with no claims; each event still has its span (handed to
the handler with the event, since only one span can be the active one: `Consumed.active()`
makes it so for the handler's work on that event alone), its outcome and its effects. A
group's transaction holds the row locks its events take until it commits, so `group_size`
bounds it; a deadlock with another replica is such a failure, and the one-by-one pass resolves
it. Counters a service increments inside its function may count an event of a failed group
twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    ExitStack,
    asynccontextmanager,
    contextmanager,
)
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from confluent_kafka import Message
from opentelemetry.trace import Span, SpanKind, get_current_span
from pydantic import BaseModel

from services.kit import tracing
from services.kit.after_commit import AfterCommit, Effect
from services.kit.db import DictConnection, Pool, autocommit
from services.kit.events import Envelope, parse_envelope
from services.kit.kafka import BatchConsumer, EventProducer
from services.kit.logs import order_id_var
from services.kit.metrics import EVENT_GROUPS, EVENT_PROCESSING, EVENTS_CONSUMED, labelled
from services.kit.outbox import claim_events

log = logging.getLogger(__name__)
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying an event did (`outcome`, for logs and tests) and what it sets off once
    committed (`after_commit`)."""

    outcome: str
    after_commit: tuple[Effect, ...] = ()


@dataclass(frozen=True, slots=True)
class Consumed:
    """An event of a group handed to `Handler.apply_many`."""

    topic: str
    event: Envelope[Any]
    span: Span | None
    """The event's own span (or the unrecorded one it passes on); None while tracing is off."""

    @property
    def trace_context(self) -> Mapping[str, str] | None:
        """The event's span as headers (kit/tracing.py), for what it writes to go out in its
        trace; worked out only for a handler that asks."""
        return tracing.headers_of(self.span) or None

    @contextmanager
    def active(self) -> Iterator[None]:
        """For a handler's work on this one event of its group: the event's span is the active
        one (what it writes goes out in its trace) and its subject (the order id) is in the log
        context, as the shell does for an event it applies alone."""
        token = order_id_var.set(self.event.subject)
        try:
            with tracing.use(self.span):
                yield
        finally:
            order_id_var.reset(token)


ApplyMany = Callable[[S, DictConnection, Sequence[Consumed]], Awaitable[Sequence[Applied | None]]]
"""Applies a group of events at once (`Handler.apply_many`)."""


@dataclass(frozen=True, slots=True)
class Handler(Generic[S]):
    """One row of a service's `EVENT_HANDLERS`: the data a topic carries and what applies it.

    `apply(service, conn, event)` runs inside the message's transaction, on `conn`.

    `dedupes_itself`: applying an event twice changes nothing the second time without the
    shell's claim (the handler records the events it applied, or a rule of its own turns a
    redelivery away, such as a version no newer than the one recorded), so the shell claims
    nothing in `processed_events` for it. Such a handler returns None for an event it knows it
    applied before.

    `one_statement`: the handler's change is one statement. A lone event of a handler that also
    dedupes itself then runs on an autocommit connection: no BEGIN and no COMMIT.

    `groups_in_one_statement`: `apply_many` changes any group in one statement (it may read
    before or after it), or opens a transaction of its own for a group that needs more, so a
    group it applies runs on an autocommit connection too (inventory's reservations are one
    statement unless the units fall short). Not for one that writes in several statements
    without such a transaction (a statement per turn of an order's events): those must commit
    together, or a failure between them would keep the group's first changes without their
    effects.

    `apply_many(service, conn, events)`: applies a group of events, in their order, as `apply`
    would one after the other but in fewer statements, and returns what `apply` would have for
    each. A group whose handlers all share it (the topics of one service) is that one call, in
    the group's transaction; it needs `dedupes_itself`, since nothing is claimed for it.
    """

    data_type: type[BaseModel]
    apply: Callable[[S, DictConnection, Envelope[Any]], Awaitable[Applied | None]]
    dedupes_itself: bool = False
    one_statement: bool = False
    apply_many: ApplyMany[S] | None = None
    groups_in_one_statement: bool = False

    def __post_init__(self) -> None:
        if self.apply_many is not None and not self.dedupes_itself:
            raise ValueError("apply_many needs a handler that dedupes itself")
        if self.groups_in_one_statement and not (self.apply_many and self.one_statement):
            raise ValueError("groups_in_one_statement needs apply_many and one_statement")

    @classmethod
    def of_many(
        cls,
        topic: str,
        data_type: type[BaseModel],
        apply_many: ApplyMany[S],
        *,
        one_statement: bool = False,
        groups_in_one_statement: bool = False,
    ) -> Handler[S]:
        """The handler of `topic` for a service that applies events through `apply_many`
        alone: a lone event is a group of one (so it dedupes itself)."""

        async def apply(service: S, conn: DictConnection, event: Envelope[Any]) -> Applied | None:
            (applied,) = await apply_many(
                service, conn, [Consumed(topic, event, get_current_span())]
            )
            return applied

        return cls(
            data_type,
            apply,
            dedupes_itself=True,
            one_statement=one_statement,
            apply_many=apply_many,
            groups_in_one_statement=groups_in_one_statement,
        )


@asynccontextmanager
async def _transaction(pool: Pool) -> AsyncIterator[DictConnection]:
    """A pooled connection in a pipelined transaction for the block."""
    async with pool.connection() as conn, conn.pipeline(), conn.transaction():
        yield conn


class EventShell(Generic[S]):
    """The batch consumer's per-message handler for one service (see the module docstring)."""

    def __init__(
        self,
        service_name: str,
        service: S,
        pool: Pool,
        handlers: Mapping[str, Handler[S]],
        after_commit: AfterCommit,
    ) -> None:
        self.service_name = service_name
        self.service = service
        self.pool = pool
        self.handlers = handlers
        self.after_commit = after_commit

    async def __call__(self, message: Message) -> None:
        """Apply one message in its own transaction."""
        with self._span(message) as span:
            applied = await self.handle(message.topic() or "", message.value() or b"")
            _mark_outcome(span, applied)

    async def handle(self, topic: str, raw: bytes) -> Applied | None:
        """Apply one message; None when it was a duplicate."""
        started = time.perf_counter()
        try:
            _, handler, envelope = self._parse(topic, raw)
            async with self._unit(handler.dedupes_itself and handler.one_statement) as conn:
                claimed = handler.dedupes_itself or bool(
                    await claim_events(conn, [(envelope.id, topic)])
                )
                applied = await self._apply_claimed(conn, handler, envelope, claimed)
            self._settle(topic, envelope, applied)
            return applied
        finally:
            labelled(EVENT_PROCESSING, self.service_name, topic).observe(
                time.perf_counter() - started
            )

    async def apply_group(self, messages: list[Message]) -> None:
        """Apply `messages` in offset order in one transaction (the module docstring's group
        commit); raises, having kept nothing, if any of them fails."""
        labelled(EVENT_GROUPS, self.service_name).observe(len(messages))
        started = time.perf_counter()
        parsed = [
            self._parse(message.topic() or "", message.value() or b"") for message in messages
        ]
        apply_many = parsed[0][1].apply_many if parsed else None
        if apply_many is not None and all(h.apply_many is apply_many for _, h, _ in parsed):
            await self._apply_many(apply_many, messages, parsed, started)
            return
        done: list[tuple[str, Envelope[Any], Applied | None, float]] = []
        claims = [(e.id, topic) for topic, handler, e in parsed if not handler.dedupes_itself]
        async with self._unit(one_statement=False) as conn:
            fresh = await claim_events(conn, claims) if claims else set()
            for message, (topic, handler, envelope) in zip(messages, parsed, strict=True):
                with self._span(message) as span:
                    claimed = handler.dedupes_itself or envelope.id in fresh
                    fresh.discard(envelope.id)  # a second copy in the group is a duplicate
                    applied = await self._apply_claimed(conn, handler, envelope, claimed)
                    _mark_outcome(span, applied)
                done.append((topic, envelope, applied, started))
                started = time.perf_counter()
        committed = time.perf_counter()
        for topic, envelope, applied, started in done:
            self._settle(topic, envelope, applied)
            labelled(EVENT_PROCESSING, self.service_name, topic).observe(committed - started)

    async def _apply_many(
        self,
        apply_many: ApplyMany[S],
        messages: list[Message],
        parsed: list[tuple[str, Handler[S], Envelope[Any]]],
        started: float,
    ) -> None:
        """A group as one call in one transaction, each event with its span; a call whose
        change is one statement (every handler's `groups_in_one_statement`) is that statement
        on an autocommit connection."""
        with ExitStack() as spans:
            opened: list[Span | None] = []
            events: list[Consumed] = []
            for message, (topic, _, envelope) in zip(messages, parsed, strict=True):
                span = spans.enter_context(self._span(message))
                if span is not None:
                    span.set_attribute("realtimeorder.order_id", envelope.subject)
                opened.append(span)
                events.append(Consumed(topic, envelope, span))
            one_statement = all(handler.groups_in_one_statement for _, handler, _ in parsed)
            async with self._unit(one_statement) as conn:
                results = await apply_many(self.service, conn, events)
            for span, applied in zip(opened, results, strict=True):
                _mark_outcome(span, applied)
        committed = time.perf_counter()
        for (topic, _, envelope), applied in zip(parsed, results, strict=True):
            self._settle(topic, envelope, applied)
            labelled(EVENT_PROCESSING, self.service_name, topic).observe(committed - started)

    def _unit(self, one_statement: bool) -> AbstractAsyncContextManager[DictConnection]:
        """The unit of work's connection: for work that is one statement, an autocommit
        connection (no BEGIN, no COMMIT); else a pipelined transaction."""
        return autocommit(self.pool) if one_statement else _transaction(self.pool)

    def _handler(self, topic: str) -> Handler[S]:
        handler = self.handlers.get(topic)
        if handler is None:
            raise ValueError(f"no handler for topic {topic!r}")
        return handler

    def _span(self, message: Message) -> AbstractContextManager[Span | None]:
        topic = message.topic() or ""
        return tracing.span(
            self.service_name,
            f"{topic} process",
            kind=SpanKind.CONSUMER,
            headers=message.headers() or (),
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": topic,
                "messaging.destination.partition.id": str(message.partition()),
                "messaging.kafka.offset": message.offset() or 0,
            },
        )

    def _parse(self, topic: str, raw: bytes) -> tuple[str, Handler[S], Envelope[Any]]:
        handler = self._handler(topic)
        return topic, handler, parse_envelope(raw, handler.data_type)

    async def _apply_claimed(
        self, conn: DictConnection, handler: Handler[S], envelope: Envelope[Any], claimed: bool
    ) -> Applied | None:
        """Apply an event this transaction claimed, or whose handler dedupes itself (None for
        one claimed before), with its order id in the log context and on the active span."""
        token = order_id_var.set(envelope.subject)
        tracing.set_attributes({"realtimeorder.order_id": envelope.subject})
        try:
            return await handler.apply(self.service, conn, envelope) if claimed else None
        finally:
            order_id_var.reset(token)

    def _settle(self, topic: str, envelope: Envelope[Any], applied: Applied | None) -> None:
        """After the commit: count the outcome and submit the effects."""
        if applied is None:
            labelled(EVENTS_CONSUMED, self.service_name, topic, "duplicate").inc()
            token = order_id_var.set(envelope.subject)
            log.info("duplicate event ignored", extra={"topic": topic, "event": envelope.id})
            order_id_var.reset(token)
            return
        labelled(EVENTS_CONSUMED, self.service_name, topic, "processed").inc()
        self.after_commit.submit(applied.after_commit)


def _mark_outcome(span: Span | None, applied: Applied | None) -> None:
    if span is not None:
        span.set_attribute("realtimeorder.outcome", applied.outcome if applied else "duplicate")


def consumer_factory(
    *,
    bootstrap: str,
    group_id: str,
    shell: EventShell[Any],
    dead_letters: EventProducer,
    batch_wait_ms: int = 0,
    busy_gather_ms: int = 0,
) -> Callable[[], BatchConsumer]:
    """What the runtime calls to (re)start the service's consumer: a fresh one each time,
    resuming from the group's committed offsets."""
    topics: Iterable[str] = tuple(shell.handlers)

    def make() -> BatchConsumer:
        return BatchConsumer(
            bootstrap,
            group_id,
            topics,
            shell,
            service=shell.service_name,
            dead_letters=dead_letters,
            group_handler=shell.apply_group,
            batch_wait_ms=batch_wait_ms,
            busy_gather_ms=busy_gather_ms,
        )

    return make
