"""The events the notifications service consumes, in one table: topic -> data type -> facts.

Every order event notifies its user. The kit's consumer shell (kit/consumer.py) parses each
message and runs `NotificationService.notify` with the facts below: a lone event is one
statement that commits by itself (`one_statement`), a group the consumer fetched together one
statement per turn of its orders' events (`apply_many`) in one transaction; a stale event (an
order version not newer than one already notified) is suppressed there. Each event of an order
carries a version of its own, so a redelivered event is stale too and changes nothing: the
shell claims nothing for these handlers (`dedupes_itself`). An event that cannot be parsed, or
whose order id is not a UUID, raises: the consumer retries it and then sends it to the
dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from services.kit.consumer import Applied, Consumed, Handler
from services.kit.db import DictConnection
from services.kit.order_events import (
    ORDER_CANCELLED,
    ORDER_CONFIRMED,
    ORDER_CREATED,
    ORDER_DELIVERED,
    ORDER_FAILED,
    ORDER_SHIPPED,
    OrderConfirmed,
    OrderCreated,
    OrderFailed,
    OrderStatusChanged,
)
from services.notifications.domain import STATUS_OF, EventType, OrderFacts
from services.notifications.service import NotificationService, Notified


def created_facts(data: OrderCreated, at: datetime) -> OrderFacts:
    return OrderFacts(
        event_type=EventType.CREATED,
        order_id=data.order_id,
        user_id=data.user_id,
        version=data.version,
        status=STATUS_OF[EventType.CREATED],
        occurred_at=data.created_at,
        total=data.total,
        currency=data.currency,
        items=tuple((line.name, line.quantity) for line in data.items),
    )


def confirmed_facts(data: OrderConfirmed, at: datetime) -> OrderFacts:
    return OrderFacts(
        event_type=EventType.CONFIRMED,
        order_id=data.order_id,
        user_id=data.user_id,
        version=data.order_version,
        status=STATUS_OF[EventType.CONFIRMED],
        occurred_at=at,
    )


def failed_facts(data: OrderFailed, at: datetime) -> OrderFacts:
    return OrderFacts(
        event_type=EventType.FAILED,
        order_id=data.order_id,
        user_id=data.user_id,
        version=data.order_version,
        status=STATUS_OF[EventType.FAILED],
        occurred_at=at,
        reason=data.reason,
    )


def status_changed_facts(
    event_type: EventType,
) -> Callable[[OrderStatusChanged, datetime], OrderFacts]:
    def facts(data: OrderStatusChanged, at: datetime) -> OrderFacts:
        return OrderFacts(
            event_type=event_type,
            order_id=data.order_id,
            user_id=data.user_id,
            version=data.version,
            status=data.status,
            occurred_at=at,
            total=data.total,
            currency=data.currency,
            reason=data.reason,
        )

    return facts


FACTS: dict[str, tuple[type[BaseModel], Callable[[Any, datetime], OrderFacts]]] = {
    ORDER_CREATED: (OrderCreated, created_facts),
    ORDER_CONFIRMED: (OrderConfirmed, confirmed_facts),
    ORDER_FAILED: (OrderFailed, failed_facts),
    ORDER_SHIPPED: (OrderStatusChanged, status_changed_facts(EventType.SHIPPED)),
    ORDER_DELIVERED: (OrderStatusChanged, status_changed_facts(EventType.DELIVERED)),
    ORDER_CANCELLED: (OrderStatusChanged, status_changed_facts(EventType.CANCELLED)),
}
"""What each consumed topic carries, and what its events say about their order."""


async def notify_many(
    service: NotificationService, conn: DictConnection, events: Sequence[Consumed]
) -> list[Applied]:
    return await service.notify(
        conn,
        [
            Notified(e.event.id, FACTS[e.topic][1](e.event.data, e.event.time), e.trace_context)
            for e in events
        ],
    )


EVENT_HANDLERS: dict[str, Handler[NotificationService]] = {
    topic: Handler.of_many(topic, data_type, notify_many, one_statement=True)
    for topic, (data_type, _) in FACTS.items()
}
