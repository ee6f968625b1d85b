"""An outbox for RabbitMQ: rows written in a transaction, published after commit with confirms.

The Kafka outbox (kit/outbox.py) has one shared table; a RabbitMQ message usually is a row of
the service's own (a notification's delivery), with a status the service keeps. So here the
service describes its rows with an `OutboxSource`: `pending` marks the rows the broker confirmed
in the last round and selects up to a batch of rows not yet confirmed, oldest first, as
`OutgoingMessage`s, in one statement; `confirmed` marks rows alone, for the relay's last round.
`RabbitRelay`, a job of the kit runtime, publishes them with `Publisher` (persistent,
mandatory, confirmed, pipelined), and its next round marks them, on the session of the relay
that leads for the schema (kit/relay.py: one replica's relay publishes at a time, so rows need
no locks and a round no transaction). A row may change between the round that published it and
the one that marks it (a worker already took its message, or failed it and an admin sent it
again); the source marks only a row that has not changed since it was read:

- a crash after commit and before publishing loses nothing: the row is still pending;
- a broker failure after publishing some messages of a batch marks those that were confirmed
  and republishes the rest later; a crash between the broker's confirm and the marking
  republishes that message, so a message carries a stable id (`message_id`, the row's id) that
  its consumers dedupe on;
- a row sent again after it was published and before it was marked is not marked: the next
  round publishes it again.

A row may carry the trace context active when it was written (`OutgoingMessage.trace_context`);
the relay then publishes its message in a PRODUCER span of that trace, whose context travels in
the message's `traceparent`/`tracestate` headers (kit/tracing.py), so the consumer's span
continues the trace.

The relay wakes on `NOTIFY <channel>_<schema>`, sent by a trigger on the source's table (kit
migration 0003 has the function; notifications migration 0004 the deliveries' triggers), and
polls as a fallback.
Before its first batch it declares the queues it publishes to (or, with `declare=False`, checks
that someone else, such as the operator, did).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry.trace import Span, SpanKind
from prometheus_client import Counter

from services.kit import tracing
from services.kit.db import DictConnection
from services.kit.metrics import labelled
from services.kit.rabbit import Outgoing, Publisher, Queue, declare_queues
from services.kit.relay import NotifiedRelay

log = logging.getLogger(__name__)

RABBIT_PUBLISHED = Counter(
    "rabbitmq_messages_published_total",
    "Messages the broker confirmed, by queue (routing key on the default exchange).",
    ["service", "queue"],
)
RABBIT_PUBLISH_FAILURES = Counter(
    "rabbitmq_publish_failures_total",
    "Relay rounds that stopped on a broker error (their unconfirmed rows are retried).",
    ["service"],
)


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One row to publish: `key` identifies it to `OutboxSource.confirmed`; `trace_context`
    is the trace context stored with the row (`tracing.current_headers()` when it was written),
    if any."""

    key: Any
    message: Outgoing
    trace_context: Mapping[str, str] | None = None


class OutboxSource(Protocol):
    """The service's rows, as the relay sees them (each call a statement on the relay's
    session). A key identifies a row as it was read: a row changed since is not marked."""

    async def pending(
        self, conn: DictConnection, limit: int, confirmed: Sequence[Any]
    ) -> Sequence[OutgoingMessage]:
        """Mark the rows of `confirmed` (the broker confirmed them in the last round) and read
        up to `limit` other unconfirmed rows, oldest first."""
        ...

    async def confirmed(self, conn: DictConnection, keys: Sequence[Any]) -> None:
        """Mark the rows of `keys` as confirmed by the broker."""
        ...


class RabbitRelay(NotifiedRelay):
    """Publishes an `OutboxSource`'s pending rows with confirms (see the module docstring; the
    loop: kit/relay.py)."""

    def __init__(
        self,
        *,
        service: str,
        publisher: Publisher,
        source: OutboxSource,
        conninfo: str,
        schema: str,
        channel: str,
        queues: Sequence[Queue] = (),
        declare: bool = True,
        batch_size: int = 200,
        poll_interval: float = 1.0,
    ) -> None:
        super().__init__(
            conninfo=conninfo,
            schema=schema,
            channel=channel,
            batch_size=batch_size,
            poll_interval=poll_interval,
        )
        self.service = service
        self.publisher = publisher
        self.source = source
        self.queues = queues
        self.declare = declare

    async def prepare(self) -> None:
        """Declare the queues (or, with `declare=False`, check someone else did)."""
        await declare_queues(self.publisher.url, self.queues, passive=not self.declare)

    def failed(self) -> None:
        RABBIT_PUBLISH_FAILURES.labels(self.service).inc()

    async def publish_batch(self) -> int:
        """Mark what the last round published and publish one batch (pipelined: every message
        is sent before the confirms are awaited); returns how many the broker confirmed (none
        while another relay leads). Leaves those confirmed to the next round to mark, then
        raises the broker's first error if any message was not."""
        session = await self.leading_session()
        if session is None:
            return 0
        rows = await self.source.pending(session, self.batch_size, self.take_unmarked(session))
        if not rows:
            return 0
        spans = [self._span(row) for row in rows]
        try:
            results = await self.publisher.publish(
                [_with_trace(row.message, span) for row, span in zip(rows, spans, strict=True)]
            )
        except BaseException as exc:
            for span in spans:
                tracing.end_span(span, exc)
            raise
        for span, result in zip(spans, results, strict=True):
            tracing.end_span(span, result)
        done = [row for row, error in zip(rows, results, strict=True) if error is None]
        if done:
            self.leave_unmarked(session, [row.key for row in done])
            for row in done:
                labelled(RABBIT_PUBLISHED, self.service, row.message.routing_key).inc()
        error = next((e for e in results if e is not None), None)
        if error is not None:
            raise error
        return len(done)

    async def mark(self, session: DictConnection, keys: list[Any]) -> None:
        await self.source.confirmed(session, keys)

    def _span(self, row: OutgoingMessage) -> Span | None:
        return tracing.start_span(
            self.service,
            f"{row.message.routing_key} publish",
            kind=SpanKind.PRODUCER,
            parent=row.trace_context,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "send",
                "messaging.destination.name": row.message.routing_key,
                "messaging.message.id": row.message.message_id,
            },
        )


def _with_trace(message: Outgoing, span: Span | None) -> Outgoing:
    """`message` with the headers that make its consumer's span a child of `span`."""
    if span is None:
        return message
    return dataclasses.replace(message, headers={**message.headers, **tracing.headers_of(span)})
