"""Building blocks for the service suites' fixtures: a running app, a client on it, a producer
playing another service, and a connection into a service's schema."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from urllib.parse import quote

import httpx
import psycopg
from confluent_kafka import Consumer, KafkaException, TopicPartition
from fastapi import FastAPI
from psycopg.rows import DictRow, dict_row

from devstack.testing import KafkaServer, PostgresServer, RabbitMQServer
from services.kit.kafka import EventProducer


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """`app` with its lifespan entered: resources open, background jobs running."""
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def asgi_client(app: FastAPI, host: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling `app` in-process, as `http://<host>`."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
        yield client


@contextmanager
def double_producer(kafka_server: KafkaServer, client_id: str) -> Iterator[EventProducer]:
    """A producer playing another service on Kafka."""
    producer = EventProducer(kafka_server.bootstrap, client_id, service="tests")
    try:
        yield producer
    finally:
        producer.close()


def fresh_consumer_group(kafka_server: KafkaServer, prefix: str, topics: Iterable[str]) -> str:
    """A new consumer group whose offsets start at the current end of `topics`.

    The session's Kafka holds every earlier suite's events; a group reading from the earliest
    offset would chew through all of them (each an unknown order) before reaching the module's
    own, and how long that takes depends on which suites ran first. Topics that do not exist
    yet have no history to skip. A partition whose leader is still being elected (a topic just
    created) is asked again; if Kafka never answers, the group reads from the earliest offset,
    as any new group would.
    """
    group = f"{prefix}-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_server.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    try:
        for _ in range(40):
            try:
                ends = _topic_ends(consumer, topics)
                if ends:  # none when no topic exists yet: nothing to skip
                    consumer.commit(offsets=ends, asynchronous=False)
                break
            except KafkaException:
                time.sleep(0.25)
    finally:
        consumer.close()
    return group


def _topic_ends(consumer: Consumer, topics: Iterable[str]) -> list[TopicPartition]:
    existing = consumer.list_topics(timeout=10).topics
    return [
        TopicPartition(topic, partition, high)
        for topic in topics
        if topic in existing
        for partition in existing[topic].partitions
        for _, high in [consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5)]
    ]


@contextmanager
def schema_connection(
    postgres_server: PostgresServer, database: str, schema: str
) -> Iterator[psycopg.Connection[DictRow]]:
    """For looking behind the API: what a service really stored in its schema."""
    with psycopg.connect(
        postgres_server.conninfo(database),
        autocommit=True,
        row_factory=dict_row,
        options=f"-c search_path={schema}",
    ) as conn:
        yield conn


@contextmanager
def rabbitmq_vhost(rabbitmq_server: RabbitMQServer, prefix: str) -> Iterator[tuple[str, str]]:
    """A fresh virtual host, so the seed's queue names are the module's own: (name, AMQP URL)."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    auth = (rabbitmq_server.user, rabbitmq_server.password)
    with httpx.Client(base_url=rabbitmq_server.management_url, auth=auth, timeout=10) as api:
        api.put(f"/api/vhosts/{name}").raise_for_status()
        api.put(
            f"/api/permissions/{name}/{rabbitmq_server.user}",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        ).raise_for_status()
        try:
            yield (
                name,
                f"amqp://{rabbitmq_server.user}:{quote(rabbitmq_server.password, safe='')}"
                f"@{rabbitmq_server.host}:{rabbitmq_server.port}/{name}",
            )
        finally:
            api.delete(f"/api/vhosts/{name}")
