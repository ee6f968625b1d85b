"""The events the orders service consumes, in one table: topic -> data type -> what it does.

All three are inventory's: its answer to order.created (confirmed or failed) and the expiry of
a reservation. Each is applied once (deduped by event id in the same transaction as the
change); a stale or illegal one is logged and ignored, not dead-lettered. An event that cannot
be parsed raises, so the consumer retries it and then sends it to the dead-letter topic.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message
from pydantic import BaseModel

from services.kit.events import parse_envelope
from services.kit.logs import order_id_var
from services.kit.metrics import EVENTS_CONSUMED
from services.kit.order_events import (
    ORDER_CONFIRMED,
    ORDER_FAILED,
    RESERVATION_EXPIRED,
    OrderConfirmed,
    OrderFailed,
    ReservationExpired,
)
from services.orders.domain import Status
from services.orders.service import OrderService

log = logging.getLogger(__name__)
RESERVATION_EXPIRED_REASON = "reservation expired"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an event asks of an order: the status to move to and the timeline reason."""

    order_id: str
    target: Status
    reason: str | None


def on_confirmed(data: OrderConfirmed) -> Outcome:
    return Outcome(data.order_id, Status.CONFIRMED, None)


def on_failed(data: OrderFailed) -> Outcome:
    return Outcome(data.order_id, Status.FAILED, failure_reason(data))


def on_reservation_expired(data: ReservationExpired) -> Outcome:
    return Outcome(data.order_id, Status.CANCELLED, RESERVATION_EXPIRED_REASON)


def failure_reason(data: OrderFailed) -> str:
    """Inventory's reason with one clause per refused line, for the timeline."""
    refusals = "; ".join(
        f"{line.product_id}: {line.reason} (requested {line.requested}, available {line.available})"
        for line in data.lines
    )
    return f"{data.reason}: {refusals}" if refusals else data.reason


@dataclass(frozen=True, slots=True)
class Route:
    data_type: type[BaseModel]
    decide: Callable[[Any], Outcome]


ROUTES: dict[str, Route] = {
    ORDER_CONFIRMED: Route(OrderConfirmed, on_confirmed),
    ORDER_FAILED: Route(OrderFailed, on_failed),
    RESERVATION_EXPIRED: Route(ReservationExpired, on_reservation_expired),
}
CONSUMED_TOPICS = tuple(ROUTES)


def message_handler(service: OrderService) -> Callable[[Message], Awaitable[None]]:
    """The per-message handler the batch consumer calls."""

    async def handle(message: Message) -> None:
        topic = message.topic() or ""
        route = ROUTES.get(topic)
        if route is None:
            raise ValueError(f"no handler for topic {topic!r}")
        envelope = parse_envelope(message.value() or b"", route.data_type)
        outcome = route.decide(envelope.data)
        token = order_id_var.set(outcome.order_id)
        try:
            change = await service.apply_inventory_event(
                topic=topic,
                event_id=envelope.id,
                order_id=outcome.order_id,
                target=outcome.target,
                reason=outcome.reason,
            )
            EVENTS_CONSUMED.labels(
                "orders", topic, "processed" if change is not None else "ignored"
            ).inc()
        finally:
            order_id_var.reset(token)

    return handle
