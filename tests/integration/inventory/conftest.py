"""The inventory app on real Postgres, Redis and Kafka.

One app per test module, on a fresh database, its own Redis database and its own consumer
group; tests create their own products and assert per product and per order id, so they do not
depend on each other. Events the orders service would send are produced straight to Kafka.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devstack.testing import KafkaServer, PostgresServer, RedisServer
from services.inventory.main import create_app
from services.inventory.service import InventoryService
from services.inventory.settings import Settings
from services.kit.consumer import EventShell
from services.kit.kafka import EventProducer, dead_letter_topic
from services.kit.order_events import (
    ORDER_CONFIRMED,
    ORDER_CREATED,
    ORDER_FAILED,
    RESERVATION_EXPIRED,
)
from tests.integration.fixtures import asgi_client, double_producer, schema_connection
from tests.integration.inventory.support import (
    TopicReader,
    inventory_settings,
)

ANSWER_TOPICS = (
    ORDER_CONFIRMED,
    ORDER_FAILED,
    RESERVATION_EXPIRED,
    dead_letter_topic(ORDER_CREATED),
)


@pytest.fixture(scope="module")
def inventory_database(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database("inventory")


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    """Overridden by a test module that needs other settings."""
    return {}


@pytest.fixture(scope="module")
def settings(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    kafka_server: KafkaServer,
    inventory_database: str,
    settings_overrides: dict[str, Any],
) -> Settings:
    return inventory_settings(
        postgres_server, redis_server, kafka_server, inventory_database, **settings_overrides
    )


@pytest.fixture(scope="module")
async def inventory_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await app.state.inventory.cache.redis.flushdb()
        yield app


@pytest.fixture(scope="module")
def shell(inventory_app: FastAPI) -> EventShell[InventoryService]:
    """The consumer's shell: applies an event exactly as a consumed message is applied."""
    event_shell: EventShell[InventoryService] = inventory_app.state.event_shell
    return event_shell


@pytest.fixture(scope="module")
def service(inventory_app: FastAPI) -> InventoryService:
    inventory: InventoryService = inventory_app.state.inventory
    return inventory


@pytest.fixture(scope="module")
async def client(inventory_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(inventory_app, "inventory") as client:
        yield client


@pytest.fixture(scope="module")
def producer(kafka_server: KafkaServer) -> Iterator[EventProducer]:
    """Plays the orders service on Kafka."""
    with double_producer(kafka_server, "orders-double") as producer:
        yield producer


@pytest.fixture(scope="module")
def reader(kafka_server: KafkaServer, inventory_app: FastAPI) -> Iterator[TopicReader]:
    """Everything inventory answers on Kafka (the app has created the topics)."""
    reader = TopicReader(kafka_server.bootstrap, ANSWER_TOPICS)
    yield reader
    reader.close()


@pytest.fixture(scope="module")
def db(postgres_server: PostgresServer, inventory_database: str) -> Iterator[Any]:
    """For looking behind the API: what the service really stored."""
    with schema_connection(postgres_server, inventory_database, "inventory") as conn:
        yield conn
