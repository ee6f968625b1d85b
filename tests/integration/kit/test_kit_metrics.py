"""The kit's pipeline gauges on a real Postgres and Kafka: the outbox backlog and the age of
its oldest row, a consumer's lag per topic and the depth of its dead-letter topics."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Message, Producer
from prometheus_client import REGISTRY

from services.kit.db import Pool, apply_migrations, create_pool
from services.kit.kafka import (
    ConsumerLag,
    DeadLetterDepth,
    EventProducer,
    client_config,
    dead_letter_topic,
    ensure_topics,
)
from services.kit.outbox import KIT_MIGRATIONS, OutboxRelay, sample_backlog
from services.kit.settings import ServiceSettings
from tests.integration.kit.support import outbox_topic

pytestmark = pytest.mark.integration
SCHEMA = "kit_metrics"


@pytest.fixture
async def settings(postgres_server: Any, kafka_server: Any) -> ServiceSettings:
    dbname = postgres_server.create_database("kit_metrics")
    return ServiceSettings(
        **postgres_server.env(dbname), KAFKA_BROKER=kafka_server.bootstrap, service_name="kit"
    )


@pytest.fixture
async def pool(settings: ServiceSettings) -> AsyncIterator[Pool]:
    pool = create_pool(settings, SCHEMA)
    await pool.open()
    await apply_migrations(pool, SCHEMA, KIT_MIGRATIONS, prefix="kit:")
    yield pool
    await pool.close()


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_the_outbox_gauges_show_rows_waiting_and_the_oldest_ones_age(
    pool: Pool, settings: ServiceSettings
) -> None:
    await outbox_topic(pool, settings.kafka_broker, "kit-metrics", "o-0", "o-1", "o-2")
    async with pool.connection() as conn:
        await conn.execute("UPDATE outbox SET created_at = now() - interval '90 seconds'")

    await sample_backlog(pool, "outbox-test")
    assert gauge("outbox_unpublished_events", service="outbox-test") == 3
    age = gauge("outbox_oldest_unpublished_age_seconds", service="outbox-test")
    assert age is not None
    assert 90 <= age < 120

    producer = EventProducer(settings.kafka_broker, "kit-metrics", service="outbox-relay-test")
    try:
        relay = OutboxRelay(pool, producer, settings.db_conninfo, SCHEMA)
        assert await relay.publish_batch() == 3
        # the relay samples before it publishes: it reported the three rows it then sent
        assert gauge("outbox_unpublished_events", service="outbox-relay-test") == 3
    finally:
        await relay.close()
        producer.close()

    await sample_backlog(pool, "outbox-test")
    assert gauge("outbox_unpublished_events", service="outbox-test") == 0
    assert gauge("outbox_oldest_unpublished_age_seconds", service="outbox-test") == 0


def _produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for n in range(count):
        producer.produce(topic, key=f"k{n}".encode(), value=b"{}")
    assert producer.flush(10) == 0


def _consume(consumer: Consumer, count: int, timeout: float = 20) -> list[Message]:
    found: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        found += [m for m in consumer.consume(count - len(found), 0.5) if m.error() is None]
    return found


async def test_consumer_gauges_show_lag_per_topic_and_dead_letter_depth(
    kafka_server: Any,
) -> None:
    topic = f"kit-lag-{uuid.uuid4().hex[:8]}"
    idle = f"kit-idle-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_server.bootstrap, [topic, idle], partitions=1)
    ensure_topics(kafka_server.bootstrap, [dead_letter_topic(topic)], partitions=2)
    _produce(kafka_server.bootstrap, topic, 5)
    _produce(kafka_server.bootstrap, dead_letter_topic(topic), 3)
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_server.bootstrap,
            "group.id": f"lag-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "max.poll.interval.ms": 60000,
        }
    )
    try:
        consumer.subscribe([topic, idle])
        assert len(_consume(consumer, 1)) == 1
        lag = ConsumerLag(consumer, "lag-test", [topic, idle])
        depth = DeadLetterDepth(client_config(kafka_server.bootstrap), "lag-test", [topic, idle])

        lag.sample()
        await depth.sample()
        assert gauge("events_consumer_lag_messages", service="lag-test", topic=topic) == 4
        assert gauge("events_consumer_lag_messages", service="lag-test", topic=idle) == 0
        # Both partitions of the dead-letter topic count; the idle topic has none at all.
        assert gauge("events_dead_letter_messages", service="lag-test", topic=topic) == 3
        assert gauge("events_dead_letter_messages", service="lag-test", topic=idle) == 0

        assert len(_consume(consumer, 4)) == 4
        lag._due = 0.0
        lag.sample()
        assert gauge("events_consumer_lag_messages", service="lag-test", topic=topic) == 0
    finally:
        consumer.close()
