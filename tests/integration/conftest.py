"""Callers every service suite uses, signed with the `settings` of the suite's own conftest,
and a client of the session's Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from devstack.testing import RedisServer
from services.kit.settings import ServiceSettings
from tests.support import Bearer, bearer


@pytest.fixture
def user(settings: ServiceSettings) -> Bearer:
    return bearer(settings)


@pytest.fixture
def other_user(settings: ServiceSettings) -> Bearer:
    return bearer(settings)


@pytest.fixture
def admin(settings: ServiceSettings) -> Bearer:
    return bearer(settings, "ADMIN")


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A client of the session's Redis, closed after the test."""
    client = Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()
