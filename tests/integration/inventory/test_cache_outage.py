"""Redis being unreachable never fails a catalogue read or a change."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from devstack.ports import HOST, free_port
from services.inventory.cache import ProductListCache
from services.inventory.schemas import product_query

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_without_redis_lists_come_from_the_database() -> None:
    nobody = Redis.from_url(
        f"redis://{HOST}:{free_port()}/0", decode_responses=True, socket_connect_timeout=1
    )
    cache = ProductListCache(nobody, ttl_seconds=60)
    builds = 0

    async def build() -> str:
        nonlocal builds
        builds += 1
        return '{"items": [], "nextCursor": null}'

    for _ in range(2):
        assert (
            await cache.get_or_build(product_query(), build) == '{"items": [], "nextCursor": null}'
        )
    assert builds == 2
    await cache.invalidate()
    await nobody.aclose()
