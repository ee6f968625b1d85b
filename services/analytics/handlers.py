"""The events the analytics service consumes, in one table: topic -> data type -> facts.

Every order event, and inventory's expired reservations, go into the projection
(`AnalyticsService.project`) through the kit's consumer shell: one statement for a lone event
or for a group of them (`Handler.apply_many`), which keeps each in the event log (its record of
applied events: the shell claims nothing). Inventory's answers (confirmed, failed) carry the
order version they answered; the order's version once orders applies them is the next one
(`order_version`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from services.analytics.repository import Creation, StatusAt
from services.analytics.service import AnalyticsService, EventFacts
from services.kit.consumer import Applied, Consumed, Handler
from services.kit.db import DictConnection
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


FACTS: dict[str, tuple[type[BaseModel], Callable[[Any, datetime], EventFacts]]] = {
    ORDER_CREATED: (OrderCreated, created_facts),
    ORDER_CONFIRMED: (OrderConfirmed, confirmed_facts),
    ORDER_FAILED: (OrderFailed, failed_facts),
    ORDER_SHIPPED: (OrderStatusChanged, status_changed_facts),
    ORDER_DELIVERED: (OrderStatusChanged, status_changed_facts),
    ORDER_CANCELLED: (OrderStatusChanged, status_changed_facts),
    RESERVATION_EXPIRED: (ReservationExpired, expired_facts),
}
"""What each consumed topic carries, and what its events say about their order."""


async def project_many(
    service: AnalyticsService, conn: DictConnection, events: Sequence[Consumed]
) -> list[Applied | None]:
    return await service.project(
        conn,
        [(e.topic, e.event, FACTS[e.topic][1](e.event.data, e.event.time)) for e in events],
    )


# The event log is the projection's record of applied events, kept by the statement that
# applies them (repository.project), for one event or a group: a lone event is a group of one.
EVENT_HANDLERS: dict[str, Handler[AnalyticsService]] = {
    topic: Handler.of_many(
        topic, data_type, project_many, one_statement=True, groups_in_one_statement=True
    )
    for topic, (data_type, _) in FACTS.items()
}
