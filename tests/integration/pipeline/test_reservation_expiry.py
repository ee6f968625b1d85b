"""An expired reservation is released by inventory's sweeper and the order is cancelled.

This module runs its own platform with a two-second reservation TTL, so the other pipeline
tests never see their reservations expire under them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest

from devstack.testing import KafkaServer, PostgresServer, RedisServer
from tests.integration.pipeline.conftest import Platform, start_platform
from tests.support import eventually

pytestmark = pytest.mark.integration
TTL_SECONDS = 2


@pytest.fixture(scope="module")
async def platform(
    postgres_server: PostgresServer, redis_server: RedisServer, kafka_server: KafkaServer
) -> AsyncIterator[Platform]:
    async with start_platform(
        postgres_server,
        redis_server,
        kafka_server,
        RESERVATION_TTL_SECONDS=TTL_SECONDS,
        RESERVATION_SWEEP_INTERVAL_SECONDS=0.2,
    ) as platform:
        yield platform


async def test_an_expired_reservation_is_released_and_the_order_cancelled(
    platform: Platform,
) -> None:
    product = await platform.product(stock=3)
    user = platform.user()
    async with platform.live(user) as live:
        response = await platform.place(user, (product, 2))
        assert response.status_code == 201, response.text
        order_id = response.json()["id"]
        await live.update(order_id, "CONFIRMED")
        assert await platform.stock(product) == {"onHand": 3, "reserved": 2, "available": 1}
        cancelled = await live.update(order_id, "CANCELLED", within=TTL_SECONDS + 15)

    assert cancelled["version"] == 3
    assert cancelled["reason"] == "reservation expired"
    order = await platform.order(user, order_id)
    assert [(e["status"], e["actor"], e["reason"]) for e in order["timeline"]] == [
        ("CREATED", f"user:{user.id}", None),
        ("CONFIRMED", "inventory", None),
        ("CANCELLED", "inventory", "reservation expired"),
    ]

    async def released() -> bool:
        return await platform.stock(product) == {"onHand": 3, "reserved": 0, "available": 3}

    await eventually(released, what="the expired reservation to be released")

    # The order.cancelled that follows reaches inventory too, and must not release twice.
    cancel_event = order["timeline"][-1]["eventId"]

    async def heard() -> bool:
        with psycopg.connect(platform.db_conninfo) as conn:
            found = conn.execute(
                "SELECT 1 FROM inventory.processed_events WHERE event_id = %s", (cancel_event,)
            ).fetchone()
        return found is not None

    await eventually(heard, what="inventory to consume order.cancelled")
    assert await platform.stock(product) == {"onHand": 3, "reserved": 0, "available": 3}
