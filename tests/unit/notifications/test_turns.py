"""A group of events recorded in turns: one event of each order per statement, each order's in
version order, without the copies."""

from __future__ import annotations

from datetime import UTC, datetime

from services.notifications.domain import STATUS_OF, EventType, OrderFacts
from services.notifications.service import Notified, Turns, _turns


def _event(order_id: str, version: int) -> Notified:
    facts = OrderFacts(
        event_type=EventType.CONFIRMED,
        order_id=order_id,
        user_id="u",
        version=version,
        status=STATUS_OF[EventType.CONFIRMED],
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return Notified(f"e-{order_id}-{version}", facts, None)


def test_each_orders_events_go_one_per_turn_in_their_order() -> None:
    events = [_event("a", 1), _event("b", 1), _event("a", 2), _event("c", 1), _event("a", 3)]
    assert _turns(events) == Turns([[0, 1, 3], [2], [4]], [])


def test_events_of_different_orders_share_one_turn() -> None:
    assert _turns([_event("a", 1), _event("b", 1), _event("c", 1)]) == Turns([[0, 1, 2]], [])
    assert _turns([]) == Turns([], [])


def test_an_orders_events_go_in_version_order_whatever_order_they_came_in() -> None:
    events = [_event("a", 2), _event("b", 1), _event("a", 1), _event("a", 3)]
    assert _turns(events) == Turns([[2, 1], [0], [3]], [])


def test_a_copy_of_an_event_in_the_group_takes_no_turn() -> None:
    events = [_event("a", 2), _event("b", 1), _event("a", 1), _event("b", 1), _event("a", 2)]
    assert _turns(events) == Turns([[2, 1], [0]], [3, 4])
