"""The events the orders service consumes, in one table: topic -> data type -> what applies it.

All three are inventory's: its answer to order.created (confirmed or failed) and the expiry of
a reservation. The kit's consumer shell (kit/consumer.py) parses each message and runs the
function below. An answer is one statement that records the event's id in the order's timeline,
so it dedupes itself: the shell claims nothing and a lone answer commits by itself. The expiry
reads the order before it changes it, so the shell claims its event id and runs it in one
transaction. A stale or illegal event is logged and ignored, not dead-lettered. An event that
cannot be parsed raises, so the consumer retries it and then sends it to the dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from services.kit.consumer import Applied, Handler
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
from services.orders.service import InventoryOutcome, OrderService

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


def _applying(
    topic: str,
    data_type: type[BaseModel],
    decide: Callable[[Any], InventoryOutcome],
    *,
    answer: bool,
) -> Handler[OrderService]:
    """The table row for one of inventory's events: decide (pure), then apply the outcome.
    `answer`: an answer to the creation, one statement that dedupes itself."""

    async def apply(
        service: OrderService, conn: DictConnection, event: Envelope[Any]
    ) -> Applied | None:
        return await service.apply_inventory_event(conn, topic, event.id, decide(event.data))

    return Handler(data_type, apply, dedupes_itself=answer, one_statement=answer)


EVENT_HANDLERS: dict[str, Handler[OrderService]] = {
    ORDER_CONFIRMED: _applying(ORDER_CONFIRMED, OrderConfirmed, on_confirmed, answer=True),
    ORDER_FAILED: _applying(ORDER_FAILED, OrderFailed, on_failed, answer=True),
    RESERVATION_EXPIRED: _applying(
        RESERVATION_EXPIRED, ReservationExpired, on_reservation_expired, answer=False
    ),
}
