"""The sweeper: a reservation nobody ships or cancels is released when it expires, and
inventory.reservation-expired tells the orders service (here with a one-second TTL)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from services.kit.events import parse_envelope
from services.kit.kafka import EventProducer
from services.kit.order_events import (
    ORDER_CONFIRMED,
    ORDER_CREATED,
    RESERVATION_EXPIRED,
    OrderConfirmed,
    ReservationExpired,
)
from tests.integration.inventory.support import (
    Received,
    TopicReader,
    create_product,
    order_created,
    status_changed,
    stock_levels,
)
from tests.support import Bearer, eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    return {"RESERVATION_TTL_SECONDS": 1, "RESERVATION_SWEEP_INTERVAL_SECONDS": 0.2}


async def confirmed_then_expired(
    client: httpx.AsyncClient,
    producer: EventProducer,
    reader: TopicReader,
    product_id: str,
    quantity: int,
) -> tuple[OrderConfirmed, ReservationExpired]:
    created = order_created([(product_id, quantity)], user_id="grace")
    await producer.publish(ORDER_CREATED, created.subject, created.to_bytes())

    async def on(topic: str) -> list[Received]:
        return reader.received(created.subject, topic)

    [confirmed] = await eventually(lambda: on(ORDER_CONFIRMED), what="the confirmation")
    [expired] = await eventually(lambda: on(RESERVATION_EXPIRED), what="the expiry")
    return (
        parse_envelope(confirmed.value, OrderConfirmed).data,
        parse_envelope(expired.value, ReservationExpired).data,
    )


async def test_an_expired_reservation_is_released_and_announced(
    client: httpx.AsyncClient,
    admin: Bearer,
    producer: EventProducer,
    reader: TopicReader,
    db: Any,
) -> None:
    expired_before = REGISTRY.get_sample_value(
        "inventory_reservations_total", {"outcome": "expired"}
    )
    product = await create_product(client, admin, stock=10)
    confirmed, expired = await confirmed_then_expired(client, producer, reader, product["id"], 4)

    assert (expired.order_id, expired.user_id, expired.version) == (
        confirmed.order_id,
        "grace",
        1,
    )
    assert expired.expired_at == confirmed.reservation_expires_at
    assert await stock_levels(client, product["id"]) == (10, 0, 10)
    row = db.execute(
        "SELECT status, reason FROM reservations WHERE order_id = %s", (confirmed.order_id,)
    ).fetchone()
    assert (row["status"], row["reason"]) == ("RELEASED", "expired")
    assert (
        REGISTRY.get_sample_value("inventory_reservations_total", {"outcome": "expired"})
        == (expired_before or 0) + 1
    )

    # The orders service answers the expiry by cancelling the order: nothing is released twice.
    topic, cancelled = status_changed(confirmed.order_id, "CANCELLED", version=3)
    await producer.publish(topic, confirmed.order_id, cancelled.to_bytes())

    async def processed() -> bool:
        row = db.execute(
            "SELECT count(*) AS n FROM processed_events WHERE event_id = %s", (cancelled.id,)
        ).fetchone()
        return bool(row["n"])

    await eventually(processed, what="the cancellation")
    assert await stock_levels(client, product["id"]) == (10, 0, 10)
    assert len(reader.received(confirmed.order_id, RESERVATION_EXPIRED)) == 1


async def test_goods_shipped_after_their_reservation_expired_still_leave_the_stock(
    client: httpx.AsyncClient,
    admin: Bearer,
    producer: EventProducer,
    reader: TopicReader,
    db: Any,
) -> None:
    product = await create_product(client, admin, stock=10)
    confirmed, _ = await confirmed_then_expired(client, producer, reader, product["id"], 3)
    topic, shipped = status_changed(confirmed.order_id, "SHIPPED", version=3)
    await producer.publish(topic, confirmed.order_id, shipped.to_bytes())

    async def counted_out() -> bool:
        return await stock_levels(client, product["id"]) == (7, 0, 7)

    await eventually(counted_out, what="the shipped units to leave the stock")
    row = db.execute(
        "SELECT status FROM reservations WHERE order_id = %s", (confirmed.order_id,)
    ).fetchone()
    assert row["status"] == "COMMITTED"
