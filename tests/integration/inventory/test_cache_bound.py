"""The product cache is bounded: unique anonymous queries cannot fill the Redis that also holds
the login counters and revocation markers. Past PRODUCT_CACHE_MAX_PAGES pages per TTL window a
query is answered from Postgres and not stored; equal normalised queries share one page."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from services.inventory.service import InventoryService

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

MAX_PAGES = 3


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    return {"PRODUCT_CACHE_MAX_PAGES": MAX_PAGES, "PRODUCT_CACHE_TTL_SECONDS": 3600}


async def pages(redis: Redis) -> int:
    return len([key async for key in redis.scan_iter("inventory:products:list:*")])


async def test_unique_queries_past_the_cap_are_served_but_not_stored(
    client: httpx.AsyncClient, service: InventoryService
) -> None:
    redis = service.cache.redis
    for n in range(MAX_PAGES * 3):
        response = await client.get("/inventory/products", params={"q": f"unique-{n}"})
        assert response.status_code == 200, response.text
    assert await pages(redis) == MAX_PAGES


async def test_equal_normalised_queries_share_a_page(
    client: httpx.AsyncClient, service: InventoryService
) -> None:
    await service.cache.redis.flushdb()
    for q, price in (("Lamp  Shade", "10"), ("lamp shade", "10.00"), (" LAMP SHADE ", "10.0")):
        response = await client.get("/inventory/products", params={"q": q, "minPrice": price})
        assert response.status_code == 200, response.text
    assert await pages(service.cache.redis) == 1
