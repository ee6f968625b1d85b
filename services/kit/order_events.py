"""The order events: topics and the typed data each one carries (schema version 1).

This module is the contract between the orders, inventory, notifications and analytics
services. Every event is keyed by the order id and carries the order's `version` after the
change it reports, so a consumer can ignore a stale event (one whose version is not newer than
what it has seen). Data fields are camelCase on the wire, like the HTTP API.

Who publishes what:
- orders: order.created, order.shipped, order.delivered, order.cancelled.
- inventory: order.confirmed, order.failed (its answer to order.created) and
  inventory.reservation-expired (orders then cancels the order, which releases nothing twice).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

ORDER_CREATED = "order.created"
ORDER_CONFIRMED = "order.confirmed"
ORDER_FAILED = "order.failed"
ORDER_SHIPPED = "order.shipped"
ORDER_DELIVERED = "order.delivered"
ORDER_CANCELLED = "order.cancelled"
RESERVATION_EXPIRED = "inventory.reservation-expired"

ORDER_TOPICS = (
    ORDER_CREATED,
    ORDER_CONFIRMED,
    ORDER_FAILED,
    ORDER_SHIPPED,
    ORDER_DELIVERED,
    ORDER_CANCELLED,
)
ALL_TOPICS = (*ORDER_TOPICS, RESERVATION_EXPIRED)

OrderStatus = Literal["CREATED", "CONFIRMED", "FAILED", "SHIPPED", "DELIVERED", "CANCELLED"]
STATUS_TOPIC: dict[str, str] = {
    "CREATED": ORDER_CREATED,
    "CONFIRMED": ORDER_CONFIRMED,
    "FAILED": ORDER_FAILED,
    "SHIPPED": ORDER_SHIPPED,
    "DELIVERED": ORDER_DELIVERED,
    "CANCELLED": ORDER_CANCELLED,
}


class EventData(BaseModel):
    """Base of event data: camelCase on the wire, immutable."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class OrderLine(EventData):
    product_id: str
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


class OrderCreated(EventData):
    order_id: str
    user_id: str
    version: int
    items: list[OrderLine]
    total: Decimal
    currency: str
    created_at: datetime


class LineRefusal(EventData):
    product_id: str
    requested: int
    available: int
    reason: str


class InventoryAnswer(EventData):
    """Inventory's answer to an order's creation; `version` is the order version it answered."""

    order_id: str
    user_id: str
    version: int

    @property
    def order_version(self) -> int:
        """The order's version once orders applies this answer: the next one. (Taken as
        `version`, an answer would look no newer than the creation it answers.)"""
        return self.version + 1


class OrderConfirmed(InventoryAnswer):
    """Inventory reserved every line."""

    reservation_expires_at: datetime


class OrderFailed(InventoryAnswer):
    """Inventory reserved nothing; one refusal per line that could not be served."""

    reason: str
    lines: list[LineRefusal]


class OrderStatusChanged(EventData):
    """A status change made by the orders service: shipped, delivered or cancelled."""

    order_id: str
    user_id: str
    version: int
    status: OrderStatus
    previous_status: OrderStatus
    actor: str
    reason: str | None = None
    total: Decimal
    currency: str


class ReservationExpired(EventData):
    order_id: str
    user_id: str
    version: int
    expired_at: datetime
