"""The events the analytics service consumes, in one table: topic -> data type -> facts.

Every order event, and inventory's expired reservations, go into the projection
(`AnalyticsService.project`) through the kit's consumer shell: one transaction per event, the
event id claimed first. Inventory's answers (confirmed, failed) carry the order version they
answered; the order's version once orders applies them is the next one (`order_version`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from services.analytics.repository import Creation, StatusAt
from services.analytics.service import AnalyticsService, EventFacts
from services.kit.consumer import Applied, Handler
from services.kit.db import DictConnection
from services.kit.events import Envelope
from services.kit.order_events import (
    ORDER_CANCELLED,
    ORDER_CONFIRMED,
    ORDER_CREATED,
    ORDER_DELIVERED,
    ORDER_FAILED,
    ORDER_SHIPPED,
    RESERVATION_EXPIRED,
    OrderConfirmed,
    OrderCreated,
    OrderFailed,
    OrderStatusChanged,
    ReservationExpired,
)


def created_facts(data: OrderCreated, _at: datetime) -> EventFacts:
    creation = Creation(
        total=data.total,
        currency=data.currency,
        item_count=sum(line.quantity for line in data.items),
        created_at=data.created_at,
    )
    return EventFacts(data.order_id, data.user_id, data.version, creation)


def confirmed_facts(data: OrderConfirmed, at: datetime) -> EventFacts:
    return EventFacts(data.order_id, data.user_id, data.order_version, StatusAt("CONFIRMED", at))


def failed_facts(data: OrderFailed, at: datetime) -> EventFacts:
    return EventFacts(data.order_id, data.user_id, data.order_version, StatusAt("FAILED", at))


def status_changed_facts(data: OrderStatusChanged, at: datetime) -> EventFacts:
    change = StatusAt(data.status, at, total=data.total, currency=data.currency)
    return EventFacts(data.order_id, data.user_id, data.version, change)


def expired_facts(data: ReservationExpired, _at: datetime) -> EventFacts:
    return EventFacts(data.order_id, data.user_id, data.version, None)


def _projecting(
    topic: str, data_type: type[BaseModel], facts: Callable[[Any, datetime], EventFacts]
) -> Handler[AnalyticsService]:
    async def apply(
        service: AnalyticsService, conn: DictConnection, event: Envelope[Any]
    ) -> Applied | None:
        return await service.project(conn, topic, event, facts(event.data, event.time))

    # The event log is the projection's record of applied events, kept by the statement that
    # applies each (repository.project).
    return Handler(data_type, apply, dedupes_itself=True, one_statement=True)


EVENT_HANDLERS: dict[str, Handler[AnalyticsService]] = {
    ORDER_CREATED: _projecting(ORDER_CREATED, OrderCreated, created_facts),
    ORDER_CONFIRMED: _projecting(ORDER_CONFIRMED, OrderConfirmed, confirmed_facts),
    ORDER_FAILED: _projecting(ORDER_FAILED, OrderFailed, failed_facts),
    ORDER_SHIPPED: _projecting(ORDER_SHIPPED, OrderStatusChanged, status_changed_facts),
    ORDER_DELIVERED: _projecting(ORDER_DELIVERED, OrderStatusChanged, status_changed_facts),
    ORDER_CANCELLED: _projecting(ORDER_CANCELLED, OrderStatusChanged, status_changed_facts),
    RESERVATION_EXPIRED: _projecting(RESERVATION_EXPIRED, ReservationExpired, expired_facts),
}
