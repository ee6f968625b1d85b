"""The consumer shell: how every service applies a consumed event, once.

A service declares what it consumes in one table, `EVENT_HANDLERS: dict[topic, Handler]` in its
`handlers.py`: the data type each topic carries and the service-layer function that applies it.
`EventShell` does the rest for every message the batch consumer hands it:

1. parse the CloudEvents envelope into the declared type (a message that cannot be parsed
   raises, so the consumer retries and then dead-letters it);
2. put the event's subject (the order id) in the log context;
3. open the unit of work: one transaction on the service's pool, in which the event id is
   claimed in `processed_events` (a redelivery finds it claimed: `duplicate`) and the
   service's function makes its change and writes any events it emits to the outbox;
4. after the commit, hand the effects the function returned (live push, cache invalidation)
   to the after-commit runner, which never blocks this loop;
5. trace it: a CONSUMER span, child of the trace context in the message's headers (the
   producing request's, carried through the outbox: kit/tracing.py), active while the handler
   runs, so the events it writes to the outbox and the effects it submits continue that trace;
6. count the outcome: `events_consumed_total{outcome=processed|duplicate|dead_lettered}`
   (dead letters are counted by the batch consumer), and time each attempt
   (`events_processing_seconds`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from confluent_kafka import Message
from opentelemetry.trace import SpanKind
from pydantic import BaseModel

from services.kit import tracing
from services.kit.after_commit import AfterCommit, Effect
from services.kit.db import DictConnection, Pool
from services.kit.events import Envelope, parse_envelope
from services.kit.kafka import BatchConsumer, EventProducer
from services.kit.logs import order_id_var
from services.kit.metrics import EVENT_PROCESSING, EVENTS_CONSUMED
from services.kit.outbox import claim_event

log = logging.getLogger(__name__)
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying an event did (`outcome`, for logs and tests) and what it sets off once
    committed (`after_commit`)."""

    outcome: str
    after_commit: tuple[Effect, ...] = ()


@dataclass(frozen=True, slots=True)
class Handler(Generic[S]):
    """One row of a service's `EVENT_HANDLERS`: the data a topic carries and what applies it.

    `apply(service, conn, event)` runs inside the message's transaction, on `conn`.
    """

    data_type: type[BaseModel]
    apply: Callable[[S, DictConnection, Envelope[Any]], Awaitable[Applied]]


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
        topic = message.topic() or ""
        with tracing.span(
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
        ) as span:
            applied = await self.handle(topic, message.value() or b"")
            if span is not None:
                span.set_attribute(
                    "realtimeorder.outcome", applied.outcome if applied else "duplicate"
                )

    async def handle(self, topic: str, raw: bytes) -> Applied | None:
        """Apply one message; None when it was a duplicate."""
        handler = self.handlers.get(topic)
        if handler is None:
            raise ValueError(f"no handler for topic {topic!r}")
        started = time.perf_counter()
        envelope = parse_envelope(raw, handler.data_type)
        token = order_id_var.set(envelope.subject)
        tracing.set_attributes({"realtimeorder.order_id": envelope.subject})
        try:
            async with self.pool.connection() as conn, conn.transaction():
                if not await claim_event(conn, envelope.id, topic):
                    applied = None
                else:
                    applied = await handler.apply(self.service, conn, envelope)
            if applied is None:
                EVENTS_CONSUMED.labels(self.service_name, topic, "duplicate").inc()
                log.info("duplicate event ignored", extra={"topic": topic, "event": envelope.id})
                return None
            EVENTS_CONSUMED.labels(self.service_name, topic, "processed").inc()
            self.after_commit.submit(applied.after_commit)
            return applied
        finally:
            EVENT_PROCESSING.labels(self.service_name, topic).observe(time.perf_counter() - started)
            order_id_var.reset(token)


def consumer_factory(
    *,
    bootstrap: str,
    group_id: str,
    shell: EventShell[Any],
    dead_letters: EventProducer,
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
        )

    return make
