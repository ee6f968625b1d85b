"""The events the orders service consumes, in one table: topic -> data type -> what applies it.

All three are inventory's: its answer to order.created (confirmed or failed) and the expiry of
a reservation. The kit's consumer shell (kit/consumer.py) parses each message and runs the
function below. Answers are one statement for a whole consumed group (a lone answer is a group
of one) that records each event's id in its order's timeline, so they dedupe themselves: the
shell claims nothing and a lone answer commits by itself. The expiry
reads the order before it changes it, so the shell claims its event id and runs it in one
transaction. A stale or illegal event is logged and ignored, not dead-lettered. An event that
cannot be parsed raises, so the consumer retries it and then sends it to the dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from services.kit.consumer import Applied, Consumed, Handler
from services.kit.db import DictConnection
from services.kit.events import Envelope
from services.kit.order_events import (
    ORDER_CONFIRMED,
    ORDER_FAILED,
    RESERVATION_EXPIRED,
    OrderConfirmed,
    OrderFailed,
    ReservationExpired,
)
from services.orders.domain import Status
from services.orders.service import Answer, InventoryOutcome, OrderService

RESERVATION_EXPIRED_REASON = "reservation expired"


def failure_reason(data: OrderFailed) -> str:
    """Inventory's reason with one clause per refused line, for the timeline."""
    refusals = "; ".join(
        f"{line.product_id}: {line.reason} (requested {line.requested}, available {line.available})"
        for line in data.lines
    )
    return f"{data.reason}: {refusals}" if refusals else data.reason


def on_confirmed(data: OrderConfirmed) -> InventoryOutcome:
    return InventoryOutcome(data.order_id, Status.CONFIRMED, None)


def on_failed(data: OrderFailed) -> InventoryOutcome:
    return InventoryOutcome(data.order_id, Status.FAILED, failure_reason(data))


def on_reservation_expired(data: ReservationExpired) -> InventoryOutcome:
    return InventoryOutcome(data.order_id, Status.CANCELLED, RESERVATION_EXPIRED_REASON)


ANSWERS: dict[str, Callable[[Any], InventoryOutcome]] = {
    ORDER_CONFIRMED: on_confirmed,
    ORDER_FAILED: on_failed,
}
"""Inventory's answers to a creation, by topic: what each asks of its order."""


async def apply_answers(
    service: OrderService, conn: DictConnection, events: Sequence[Consumed]
) -> list[Applied | None]:
    """A group of answers (a lone one is a group of one): one statement for all of them."""
    return await service.apply_answers(
        conn,
        [Answer(e.topic, e.event.id, ANSWERS[e.topic](e.event.data)) for e in events],
    )


async def apply_expiry(
    service: OrderService, conn: DictConnection, event: Envelope[Any]
) -> Applied | None:
    return await service.apply_inventory_event(
        conn, RESERVATION_EXPIRED, on_reservation_expired(event.data)
    )


EVENT_HANDLERS: dict[str, Handler[OrderService]] = {
    ORDER_CONFIRMED: Handler.of_many(
        ORDER_CONFIRMED,
        OrderConfirmed,
        apply_answers,
        one_statement=True,
        groups_in_one_statement=True,
    ),
    ORDER_FAILED: Handler.of_many(
        ORDER_FAILED, OrderFailed, apply_answers, one_statement=True, groups_in_one_statement=True
    ),
    RESERVATION_EXPIRED: Handler(ReservationExpired, apply_expiry),
}
