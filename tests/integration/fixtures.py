"""Building blocks for the service suites' fixtures: a running app, a client on it, a producer
playing another service, and a connection into a service's schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
import psycopg
from fastapi import FastAPI
from psycopg.rows import DictRow, dict_row

from devstack.testing import KafkaServer, PostgresServer
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
