"""A group of events recorded in turns: one event of each order per statement, in order, without
those an earlier event of their order supersedes."""

from __future__ import annotations

from datetime import UTC, datetime

from services.notifications.domain import STATUS_OF, EventType, OrderFacts
from services.notifications.service import Notified, _superseded, _turns


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
    assert _turns(events) == [[0, 1, 3], [2], [4]]


def test_events_of_different_orders_share_one_turn() -> None:
    assert _turns([_event("a", 1), _event("b", 1), _event("c", 1)]) == [[0, 1, 2]]
    assert _turns([]) == []


def test_an_event_after_one_of_its_order_at_the_same_or_a_newer_version_is_superseded() -> None:
    events = [_event("a", 2), _event("b", 1), _event("a", 1), _event("b", 1), _event("a", 3)]
    assert _superseded(events) == [False, False, True, True, False]


def test_a_newer_event_after_an_older_one_is_not_superseded() -> None:
    events = [_event("a", 1), _event("a", 2), _event("a", 2), _event("a", 1)]
    assert _superseded(events) == [False, False, True, True]


def test_superseded_events_take_no_turn() -> None:
    events = [_event("a", 2), _event("b", 1), _event("a", 1), _event("b", 2)]
    assert _turns(events, _superseded(events)) == [[0, 1], [3]]
