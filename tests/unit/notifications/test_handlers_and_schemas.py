"""What each consumed event tells notifications, and what the preferences body accepts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from services.kit.order_events import (
    ORDER_TOPICS,
    OrderConfirmed,
    OrderCreated,
    OrderFailed,
    OrderLine,
    OrderStatusChanged,
)
from services.notifications.domain import Channel, EventType, is_newer
from services.notifications.handlers import (
    EVENT_HANDLERS,
    confirmed_facts,
    created_facts,
    failed_facts,
    status_changed_facts,
)
from services.notifications.schemas import PreferencesIn

AT = datetime(2026, 1, 1, tzinfo=UTC)
ORDER = "5b0f6d1e-0000-4000-8000-000000000001"


def test_every_order_topic_is_consumed() -> None:
    assert set(EVENT_HANDLERS) == set(ORDER_TOPICS)
    assert {str(e) for e in EventType} == set(ORDER_TOPICS)


def test_created_carries_the_lines_and_total() -> None:
    line = OrderLine(
        product_id="p",
        sku="S",
        name="Widget",
        quantity=2,
        unit_price=Decimal("1.00"),
        line_total=Decimal("2.00"),
    )
    data = OrderCreated(
        order_id=ORDER,
        user_id="u",
        version=1,
        items=[line],
        total=Decimal("2.00"),
        currency="EUR",
        created_at=AT,
    )
    facts = created_facts(data, datetime.now(UTC))
    assert (facts.event_type, facts.version, facts.status) == (EventType.CREATED, 1, "CREATED")
    assert facts.items == (("Widget", 2),)
    assert (facts.total, facts.currency, facts.occurred_at) == (Decimal("2.00"), "EUR", AT)


def test_inventory_answers_and_status_changes() -> None:
    confirmed = confirmed_facts(
        OrderConfirmed(order_id=ORDER, user_id="u", version=1, reservation_expires_at=AT), AT
    )
    assert (confirmed.event_type, confirmed.version, confirmed.status) == (
        EventType.CONFIRMED,
        2,
        "CONFIRMED",
    )
    failed = failed_facts(
        OrderFailed(order_id=ORDER, user_id="u", version=1, reason="out of stock", lines=[]), AT
    )
    assert (failed.status, failed.reason, failed.version) == ("FAILED", "out of stock", 2)
    shipped = status_changed_facts(EventType.SHIPPED)(
        OrderStatusChanged(
            order_id=ORDER,
            user_id="u",
            version=3,
            status="SHIPPED",
            previous_status="CONFIRMED",
            actor="admin:a",
            total=Decimal("2.00"),
            currency="EUR",
        ),
        AT,
    )
    assert (shipped.event_type, shipped.status, shipped.version) == (
        EventType.SHIPPED,
        "SHIPPED",
        3,
    )


def test_preferences_accept_event_types_channels_and_contacts() -> None:
    body = PreferencesIn.model_validate(
        {
            "channels": {"order.shipped": {"sms": True}, "order.created": {}},
            "email": "ada@example.org",
            "phone": "+4930123456",
        }
    )
    assert body.channels == {EventType.SHIPPED: {Channel.SMS: True}, EventType.CREATED: {}}
    assert PreferencesIn.model_validate({}).channels == {}


@pytest.mark.parametrize(
    "body",
    [
        {"channels": {"order.lost": {"email": True}}},
        {"channels": {"order.shipped": {"fax": True}}},
        {"channels": {"order.shipped": {"inApp": False}}},
        {"channels": {"order.shipped": {"email": "yes"}}},
        {"channels": {"order.shipped": {"email": 1}}},
        {"channels": {"order.shipped": True}},
        {"channels": []},
        {"email": "not-an-address"},
        {"phone": "0301234"},
        {"phone": "+0301234567"},
        {"quietHours": True},
    ],
)
def test_preferences_refuse_what_they_do_not_know(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PreferencesIn.model_validate(body)


def test_inventory_answer_is_newer_than_the_creation_it_answers() -> None:
    # Inventory's answer carries the version it answered: the created one.
    created = created_facts(
        OrderCreated(
            order_id=ORDER,
            user_id="u",
            version=1,
            items=[],
            total=Decimal("1.00"),
            currency="EUR",
            created_at=AT,
        ),
        AT,
    )
    for answer in (
        confirmed_facts(
            OrderConfirmed(order_id=ORDER, user_id="u", version=1, reservation_expires_at=AT), AT
        ),
        failed_facts(OrderFailed(order_id=ORDER, user_id="u", version=1, reason="r", lines=[]), AT),
    ):
        assert is_newer(answer.version, created.version)
