"""The notifications app on real Postgres, Redis, Kafka and RabbitMQ.

One app per test module, on a fresh database, its own consumer group and its own RabbitMQ
virtual host (so the seed's queue names are its own); tests stay apart by using fresh users
and orders. Order events are produced straight to Kafka, or handed to the app's consumer shell
when a test needs to know the moment one was applied.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg.rows import DictRow

from devstack.testing import (
    KafkaServer,
    MailpitServer,
    PostgresServer,
    RabbitMQServer,
    RedisServer,
)
from services.kit.consumer import EventShell
from services.kit.kafka import EventProducer
from services.notifications.domain import Channel
from services.notifications.handlers import EVENT_HANDLERS
from services.notifications.main import create_app
from services.notifications.settings import Settings, WorkerSettings
from services.notifications.worker import create_worker_app
from tests.integration.fixtures import (
    asgi_client,
    double_producer,
    fresh_consumer_group,
    rabbitmq_vhost,
    running,
    schema_connection,
)
from tests.integration.notifications.providers import ProviderDouble, provider_double
from tests.integration.notifications.support import FAST_RETRIES, QueueReader
from tests.signing import token_env


@pytest.fixture(scope="module")
def vhost_url(rabbitmq_server: RabbitMQServer) -> Iterator[str]:
    with rabbitmq_vhost(rabbitmq_server, "notifications") as (_, url):
        yield url


@pytest.fixture(scope="module")
def notifications_database(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database("notifications")


@pytest.fixture(scope="module")
def settings(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    kafka_server: KafkaServer,
    notifications_database: str,
    vhost_url: str,
) -> Settings:
    values: dict[str, Any] = {
        **postgres_server.env(notifications_database),
        "APP_ENV": "test",
        "REDIS_URL": redis_server.url,
        "KAFKA_BROKER": kafka_server.bootstrap,
        "RABBITMQ_URL": vhost_url,
        **token_env(),
        "KAFKA_CONSUMER_GROUP": fresh_consumer_group(
            kafka_server, "notifications-test", EVENT_HANDLERS
        ),
    }
    return Settings(**values)


@pytest.fixture(scope="module")
async def notifications_app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with running(create_app(settings)) as app:
        yield app


@pytest.fixture(scope="module")
async def client(notifications_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(notifications_app, "notifications") as client:
        yield client


@pytest.fixture(scope="module")
def shell(notifications_app: FastAPI) -> EventShell[Any]:
    """The app's consumer shell: `await shell.handle(topic, raw)` applies one event now."""
    shell: EventShell[Any] = notifications_app.state.event_shell
    return shell


@pytest.fixture(scope="module")
def producer(kafka_server: KafkaServer) -> Iterator[EventProducer]:
    """Plays the orders and inventory services on Kafka."""
    with double_producer(kafka_server, "orders-double") as producer:
        yield producer


@pytest.fixture(scope="module")
def queues(vhost_url: str) -> QueueReader:
    return QueueReader(vhost_url)


@pytest.fixture(scope="module")
def db(
    postgres_server: PostgresServer, notifications_database: str
) -> Iterator[psycopg.Connection[DictRow]]:
    """For looking behind the API: what the service really stored."""
    with schema_connection(postgres_server, notifications_database, "notifications") as conn:
        yield conn


# --- the channel workers (modules that use them override `settings` with FAST_RETRIES) --------


@pytest.fixture(scope="module")
async def provider() -> AsyncIterator[ProviderDouble]:
    async with provider_double() as double:
        yield double


@pytest.fixture(scope="module")
def worker_settings(
    postgres_server: PostgresServer,
    notifications_database: str,
    vhost_url: str,
    provider: ProviderDouble,
    mailpit_server: MailpitServer,
) -> WorkerSettings:
    values: dict[str, Any] = {
        **postgres_server.env(notifications_database),
        "APP_ENV": "test",
        "RABBITMQ_URL": vhost_url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": mailpit_server.smtp_port,
        "SMS_PROVIDER_URL": provider.url("sms"),
        "PUSH_PROVIDER_URL": provider.url("push"),
        "RETRY_DELAYS_SECONDS": ",".join(str(d) for d in FAST_RETRIES["retry_delays_seconds"]),
        "MAX_ATTEMPTS": FAST_RETRIES["max_attempts"],
        "PROVIDER_TIMEOUT_SECONDS": 2,
    }
    return WorkerSettings(**values)


@pytest.fixture(scope="module")
async def workers(
    notifications_app: FastAPI, worker_settings: WorkerSettings
) -> AsyncIterator[dict[Channel, FastAPI]]:
    async with AsyncExitStack() as stack:
        apps = {
            channel: await stack.enter_async_context(
                running(create_worker_app(channel, worker_settings))
            )
            for channel in Channel
        }
        yield apps
