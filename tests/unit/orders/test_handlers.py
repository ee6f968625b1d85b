"""Which consumed event asks for which status, and the reason a failed order shows."""

from __future__ import annotations

from datetime import UTC, datetime

from services.kit.order_events import (
    ORDER_CONFIRMED,
    ORDER_FAILED,
    RESERVATION_EXPIRED,
    LineRefusal,
    OrderConfirmed,
    OrderFailed,
    ReservationExpired,
)
from services.orders.domain import Status
from services.orders.handlers import (
    EVENT_HANDLERS,
    failure_reason,
    on_confirmed,
    on_failed,
    on_reservation_expired,
)
from services.orders.service import InventoryOutcome


def test_the_consumed_topics_and_their_data() -> None:
    assert {topic: handler.data_type for topic, handler in EVENT_HANDLERS.items()} == {
        ORDER_CONFIRMED: OrderConfirmed,
        ORDER_FAILED: OrderFailed,
        RESERVATION_EXPIRED: ReservationExpired,
    }


def test_confirmed() -> None:
    data = OrderConfirmed(
        order_id="o1", user_id="u1", version=1, reservation_expires_at=datetime.now(UTC)
    )
    assert on_confirmed(data) == InventoryOutcome("o1", Status.CONFIRMED, None)


def test_failed_names_each_refused_line() -> None:
    data = OrderFailed(
        order_id="o1",
        user_id="u1",
        version=1,
        reason="insufficient stock",
        lines=[
            LineRefusal(product_id="p1", requested=5, available=2, reason="insufficient-stock"),
            LineRefusal(product_id="p2", requested=1, available=0, reason="inactive-product"),
        ],
    )
    outcome = on_failed(data)
    assert outcome.target is Status.FAILED
    assert outcome.reason == (
        "insufficient stock: p1: insufficient-stock (requested 5, available 2); "
        "p2: inactive-product (requested 1, available 0)"
    )


def test_failed_without_lines_keeps_the_reason() -> None:
    data = OrderFailed(order_id="o1", user_id="u1", version=1, reason="order cancelled", lines=[])
    assert failure_reason(data) == "order cancelled"


def test_an_expired_reservation_cancels() -> None:
    data = ReservationExpired(order_id="o1", user_id="u1", version=1, expired_at=datetime.now(UTC))
    assert on_reservation_expired(data) == InventoryOutcome(
        "o1", Status.CANCELLED, "reservation expired"
    )
