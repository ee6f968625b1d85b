"""The orders app on real Postgres, Redis and Kafka, with the catalogue played by a stub.

One app per test module, on a fresh database and its own consumer group; tests stay apart by
using fresh users (an order is only visible to its owner) and asserting per order id. Events
inventory would send are produced straight to Kafka by the tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg.rows import DictRow

from devstack.testing import KafkaServer, PostgresServer, RedisServer
from services.kit.kafka import EventProducer
from services.orders.handlers import EVENT_HANDLERS
from services.orders.main import create_app
from services.orders.settings import Settings
from tests.integration.fixtures import (
    asgi_client,
    double_producer,
    fresh_consumer_group,
    running,
    schema_connection,
)
from tests.integration.orders.support import (
    CatalogueStub,
    serve,
)
from tests.signing import token_env


@pytest.fixture(scope="module")
async def catalogue() -> AsyncIterator[CatalogueStub]:
    stub = CatalogueStub()
    async with serve(stub.app()) as url:
        stub.url = url
        yield stub


@pytest.fixture(scope="module")
def orders_database(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database("orders")


def orders_settings(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    kafka_server: KafkaServer,
    database: str,
    inventory_url: str,
    **overrides: Any,
) -> Settings:
    values: dict[str, Any] = {
        **postgres_server.env(database),
        "APP_ENV": "test",
        "REDIS_URL": redis_server.url,
        "KAFKA_BROKER": kafka_server.bootstrap,
        **token_env(),
        "INVENTORY_SERVICE_URL": inventory_url,
        "KAFKA_CONSUMER_GROUP": fresh_consumer_group(kafka_server, "orders-test", EVENT_HANDLERS),
        "DB_POOL_MIN": 2,
        "DB_POOL_MAX": 10,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    """What a test module sets differently (a module overrides this fixture)."""
    return {}


@pytest.fixture(scope="module")
def settings(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    kafka_server: KafkaServer,
    orders_database: str,
    catalogue: CatalogueStub,
    settings_overrides: dict[str, Any],
) -> Settings:
    return orders_settings(
        postgres_server,
        redis_server,
        kafka_server,
        orders_database,
        catalogue.url,
        **settings_overrides,
    )


@pytest.fixture(scope="module")
async def orders_app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with running(create_app(settings)) as app:
        yield app


@pytest.fixture(scope="module")
async def client(orders_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(orders_app, "orders") as client:
        yield client


@pytest.fixture(scope="module")
def producer(kafka_server: KafkaServer) -> Iterator[EventProducer]:
    """Plays inventory on Kafka."""
    with double_producer(kafka_server, "inventory-double") as producer:
        yield producer


@pytest.fixture(scope="module")
def db(
    postgres_server: PostgresServer, orders_database: str
) -> Iterator[psycopg.Connection[DictRow]]:
    """For looking behind the API: what the service really stored."""
    with schema_connection(postgres_server, orders_database, "orders") as conn:
        yield conn
