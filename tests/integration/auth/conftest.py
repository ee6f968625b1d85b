"""The auth app against real Postgres and Redis: a fresh database per test, real lifespan.

Every test gets its own database and its own client address, so the Redis rate-limit counters
(keyed by email and address) of one test never count against another.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devstack.testing import PostgresServer, RedisServer
from services.auth.main import create_app
from services.auth.settings import Settings
from tests.integration.auth.support import random_address
from tests.signing import token_env

SettingsFactory = Callable[..., Settings]
ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def auth_database(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database("auth")


@pytest.fixture
def make_settings(
    postgres_server: PostgresServer, redis_server: RedisServer, auth_database: str
) -> SettingsFactory:
    """Settings for this test's database; keyword arguments override by variable name."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            **postgres_server.env(auth_database),
            "APP_ENV": "test",
            "PORT": 3001,
            "REDIS_URL": redis_server.url,
            **token_env(),
            "DB_POOL_MIN": 1,
            "DB_POOL_MAX": 4,
            # Cheap argon2 parameters keep the suite fast; production defaults are RFC 9106's.
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_COST_KIB": 1024,
            "ARGON2_PARALLELISM": 1,
            "ADMIN_EMAIL": None,
            "ADMIN_PASSWORD": None,
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """The app with its lifespan entered, as uvicorn would run it."""
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
def start_client() -> ClientFactory:
    """Start the app for some settings and talk to it from a socket peer of your choice."""

    @asynccontextmanager
    async def start(
        settings: Settings, *, peer: str | None = None
    ) -> AsyncIterator[httpx.AsyncClient]:
        async with running(create_app(settings)) as app:
            transport = httpx.ASGITransport(app=app, client=(peer or random_address(), 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
                yield client

    return start


@pytest.fixture
async def client(
    settings: Settings, start_client: ClientFactory
) -> AsyncIterator[httpx.AsyncClient]:
    async with start_client(settings) as client:
        yield client


@pytest.fixture
def db_conninfo(postgres_server: PostgresServer, auth_database: str) -> str:
    """For looking behind the API: what the service really stored."""
    return postgres_server.conninfo(auth_database)
