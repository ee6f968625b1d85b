"""The analytics app on real Postgres, Redis, Kafka and RabbitMQ.

One app per test module, on a fresh database, with its own consumer group (starting at the
current end of the topics) and its own RabbitMQ virtual host for the queue monitor. Its
PROMETHEUS_URL points at a port nothing listens on: these tests see the reports answer from the
projection alone (tests/integration/pipeline/test_analytics.py runs them against a real
Prometheus). Events are produced to Kafka, or handed to the app's consumer shell when a test
must know the moment one was applied.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devstack.ports import free_port
from devstack.testing import KafkaServer, PostgresServer, RabbitMQServer, RedisServer
from services.analytics.handlers import EVENT_HANDLERS
from services.analytics.main import create_app
from services.analytics.settings import Settings
from services.kit.consumer import EventShell
from services.kit.kafka import EventProducer
from tests.integration.fixtures import (
    asgi_client,
    double_producer,
    fresh_consumer_group,
    rabbitmq_vhost,
    running,
)
from tests.signing import token_env
from tests.support import Bearer, bearer


@pytest.fixture(scope="module")
def vhost(rabbitmq_server: RabbitMQServer) -> Iterator[tuple[str, str]]:
    """The queue monitor's virtual host: (name, AMQP URL)."""
    with rabbitmq_vhost(rabbitmq_server, "analytics") as found:
        yield found


@pytest.fixture(scope="module")
def settings(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    kafka_server: KafkaServer,
    rabbitmq_server: RabbitMQServer,
    vhost: tuple[str, str],
) -> Settings:
    database = postgres_server.create_database("analytics")
    values: dict[str, Any] = {
        **postgres_server.env(database),
        "APP_ENV": "test",
        "REDIS_URL": redis_server.url,
        "KAFKA_BROKER": kafka_server.bootstrap,
        "RABBITMQ_URL": vhost[1],
        "RABBITMQ_MANAGEMENT_URL": rabbitmq_server.management_url,
        "PROMETHEUS_URL": f"http://127.0.0.1:{free_port()}",
        "PROMETHEUS_TIMEOUT_SECONDS": 1,
        **token_env(),
        "KAFKA_CONSUMER_GROUP": fresh_consumer_group(
            kafka_server, "analytics-test", EVENT_HANDLERS
        ),
    }
    return Settings(**values)


@pytest.fixture(scope="module")
async def analytics_app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with running(create_app(settings)) as app:
        yield app


@pytest.fixture(scope="module")
async def client(analytics_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(analytics_app, "analytics") as client:
        yield client


@pytest.fixture(scope="module")
def shell(analytics_app: FastAPI) -> EventShell[Any]:
    """The app's consumer shell: `await shell.handle(topic, raw)` applies one event now."""
    shell: EventShell[Any] = analytics_app.state.event_shell
    return shell


@pytest.fixture(scope="module")
def producer(kafka_server: KafkaServer) -> Iterator[EventProducer]:
    """Plays the orders and inventory services on Kafka."""
    with double_producer(kafka_server, "orders-double") as producer:
        yield producer


@pytest.fixture(scope="module")
def admin(settings: Settings) -> Bearer:
    return bearer(settings, "ADMIN")


@pytest.fixture(scope="module")
def user(settings: Settings) -> Bearer:
    return bearer(settings)
