"""Order events as the orders and inventory services write them, for the analytics tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from services.kit.events import Envelope
from services.kit.order_events import (
    ORDER_CONFIRMED,
    ORDER_CREATED,
    ORDER_FAILED,
    RESERVATION_EXPIRED,
    OrderConfirmed,
    OrderCreated,
    OrderFailed,
    OrderLine,
    OrderStatusChanged,
    ReservationExpired,
)
from services.kit.outbox import event

Event = tuple[str, Envelope[Any]]


def created(
    order_id: str, user_id: str, at: datetime, total: str = "10.00", currency: str = "EUR"
) -> Event:
    amount = Decimal(total)
    data = OrderCreated(
        order_id=order_id,
        user_id=user_id,
        version=1,
        items=[
            OrderLine(
                product_id=str(uuid.uuid4()),
                sku="SKU-1",
                name="Widget",
                quantity=2,
                unit_price=amount / 2,
                line_total=amount,
            )
        ],
        total=amount,
        currency=currency,
        created_at=at,
    )
    return ORDER_CREATED, event("/services/orders", ORDER_CREATED, order_id, data)


def confirmed(order_id: str, user_id: str) -> Event:
    data = OrderConfirmed(
        order_id=order_id, user_id=user_id, version=1, reservation_expires_at=datetime.now(UTC)
    )
    return ORDER_CONFIRMED, event("/services/inventory", ORDER_CONFIRMED, order_id, data)


def expired(order_id: str, user_id: str) -> Event:
    data = ReservationExpired(
        order_id=order_id, user_id=user_id, version=1, expired_at=datetime.now(UTC)
    )
    return RESERVATION_EXPIRED, event("/services/inventory", RESERVATION_EXPIRED, order_id, data)


def failed(order_id: str, user_id: str) -> Event:
    data = OrderFailed(
        order_id=order_id, user_id=user_id, version=1, reason="out of stock", lines=[]
    )
    return ORDER_FAILED, event("/services/inventory", ORDER_FAILED, order_id, data)


def status_changed(
    topic: str, order_id: str, user_id: str, version: int, status: str, previous: str
) -> Event:
    data = OrderStatusChanged(
        order_id=order_id,
        user_id=user_id,
        version=version,
        status=status,
        previous_status=previous,
        actor="admin",
        total=Decimal("10.00"),
        currency="EUR",
    )
    return topic, event("/services/orders", topic, order_id, data)
