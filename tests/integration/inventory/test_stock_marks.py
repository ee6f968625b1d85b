"""Stock changes of the order flow mark the product list stale paced, on a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from services.inventory.cache import ProductListCache
from services.kit.changes import PRODUCT_CHANGES

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
INTERVAL = 1.0


Paced = Callable[[float], ProductListCache]


async def generation(redis: Redis) -> int:
    return await PRODUCT_CHANGES.generation(redis)


@pytest.fixture
async def paced(redis: Redis) -> AsyncIterator[Paced]:
    """Caches on `redis` marking stock changes at most once every given seconds; closed after
    the test (their `close` is a step of some tests too)."""
    made: list[ProductListCache] = []

    def make(stock_mark_seconds: float) -> ProductListCache:
        made.append(ProductListCache(redis, ttl_seconds=60, stock_mark_seconds=stock_mark_seconds))
        return made[-1]

    yield make
    for cache in made:
        await cache.close()


async def test_stock_changes_mark_at_once_then_once_per_interval(
    redis: Redis, paced: Paced
) -> None:
    cache = paced(INTERVAL)
    start = await generation(redis)

    await cache.stock_changed()
    assert await generation(redis) == start + 1, "the first change after a quiet spell at once"

    started = time.monotonic()
    for _ in range(5):
        await cache.stock_changed()
    assert await generation(redis) == start + 1, "the changes within the interval wait"
    while await generation(redis) == start + 1:
        assert time.monotonic() - started < 5 * INTERVAL, "the waiting changes were never marked"
        await asyncio.sleep(0.02)
    assert await generation(redis) == start + 2, "one mark for the five"

    await asyncio.sleep(INTERVAL + 0.2)
    assert await generation(redis) == start + 2, "nothing marked without a change"


async def test_an_admin_change_marks_at_once_and_close_marks_a_waiting_change(
    redis: Redis, paced: Paced
) -> None:
    cache = paced(60)
    start = await generation(redis)

    await cache.stock_changed()
    await cache.invalidate()
    assert await generation(redis) == start + 2, "an admin's change is not paced"
    await cache.stock_changed()
    assert await generation(redis) == start + 2

    await cache.close()
    assert await generation(redis) == start + 3, "a change waiting at shutdown is marked"


async def test_without_an_interval_every_change_marks(redis: Redis, paced: Paced) -> None:
    cache = paced(0)
    start = await generation(redis)

    for _ in range(3):
        await cache.stock_changed()

    assert await generation(redis) == start + 3
