"""The Kafka outbox keeps the writer's trace context with the row, and the relay publishes in it
(on a real Postgres; the producer is a double that records what it is given)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from devstack.testing import PostgresServer
from services.kit import tracing
from services.kit.db import Pool, apply_migrations, create_pool
from services.kit.kafka import EventProducer
from services.kit.order_events import RESERVATION_EXPIRED, ReservationExpired
from services.kit.outbox import KIT_MIGRATIONS, OutboxRelay, add_to_outbox, event
from services.kit.settings import ServiceSettings
from tests.integration.tracing.conftest import in_memory

pytestmark = pytest.mark.integration
SCHEMA = "tracing_outbox"
SERVICE = "inventory"


class _Producer:
    service = SERVICE

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, str] | None]] = []

    def publish_nowait(
        self, topic: str, key: str, value: bytes, headers: dict[str, str] | None = None
    ) -> asyncio.Future[None]:
        self.sent.append((topic, key, headers))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    in_memory(exporter)
    tracing.configure(SERVICE)
    yield exporter
    tracing.trace_with(None)


@pytest.fixture
async def pool(postgres_server: PostgresServer) -> AsyncIterator[Pool]:
    database = postgres_server.create_database("tracing_outbox")
    values: dict[str, Any] = {**postgres_server.env(database), "service_name": SERVICE}
    settings = ServiceSettings(**values)
    pool = create_pool(settings, SCHEMA)
    await pool.open()
    await apply_migrations(pool, SCHEMA, KIT_MIGRATIONS, prefix="kit:")
    yield pool
    await pool.close()


def _expired(order_id: str) -> Any:
    data = ReservationExpired(
        order_id=order_id, user_id="u", version=1, expired_at=datetime.now(UTC)
    )
    return event("/test", RESERVATION_EXPIRED, order_id, data)


async def _relay(pool: Pool) -> _Producer:
    producer = _Producer()
    assert isinstance(pool.conninfo, str)
    relay = OutboxRelay(pool, cast("EventProducer", producer), pool.conninfo, SCHEMA)
    try:
        assert await relay.publish_batch() > 0
    finally:
        await relay.close()
    return producer


async def test_a_row_keeps_its_writer_s_trace_and_is_published_in_it(
    pool: Pool, spans: InMemorySpanExporter
) -> None:
    with tracing.span(SERVICE, "order.created process", kind=SpanKind.CONSUMER) as writer:
        assert writer is not None
        async with pool.connection() as conn, conn.transaction():
            await add_to_outbox(conn, RESERVATION_EXPIRED, _expired("traced"))
        stored = tracing.current_headers()
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT trace_context FROM outbox WHERE message_key = %s", ("traced",)
        )
        row = await cursor.fetchone()
    assert row is not None
    assert row["trace_context"] == stored

    producer = await _relay(pool)
    ((topic, key, headers),) = producer.sent
    assert (topic, key) == (RESERVATION_EXPIRED, "traced")
    (publish,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.PRODUCER]
    assert publish.name == f"{RESERVATION_EXPIRED} publish"
    assert publish.parent is not None
    assert publish.parent.span_id == writer.get_span_context().span_id
    assert headers is not None
    assert headers["traceparent"].startswith(
        f"00-{publish.context.trace_id:032x}-{publish.context.span_id:016x}-"
    )
    with tracing.span(SERVICE, "consume", headers=headers):
        pass
    (consume,) = [s for s in spans.get_finished_spans() if s.name == "consume"]
    assert consume.parent is not None
    assert consume.parent.span_id == publish.context.span_id
    assert consume.context.trace_id == writer.get_span_context().trace_id


async def test_a_row_written_outside_a_trace_stores_none_and_is_published_bare(
    pool: Pool, spans: InMemorySpanExporter
) -> None:
    async with pool.connection() as conn, conn.transaction():
        await add_to_outbox(conn, RESERVATION_EXPIRED, _expired("untraced"))
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT trace_context FROM outbox WHERE message_key = %s", ("untraced",)
        )
        row = await cursor.fetchone()
    assert row is not None
    assert row["trace_context"] is None
    producer = await _relay(pool)
    assert producer.sent == [(RESERVATION_EXPIRED, "untraced", None)]
    assert spans.get_finished_spans() == ()
