"""A connection pool for unit tests of code that only opens units of work on it (a relay round):
its connections' pipelines and transactions do nothing, and what the code reads or writes comes
from the test's own fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

from services.kit.db import Pool


class FakeConnection:
    @asynccontextmanager
    async def pipeline(self) -> AsyncIterator[None]:
        yield

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield


class FakePool:
    @asynccontextmanager
    async def connection(self) -> AsyncIterator[FakeConnection]:
        yield FakeConnection()


def fake_pool() -> Pool:
    """A `FakePool`, typed as the pool the code under test takes."""
    return cast(Pool, FakePool())
