"""The message published to a channel's queue: the versioned contract the workers read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from pydantic import ValidationError

from services.notifications.domain import Channel, EventType, OrderFacts
from services.notifications.messages import (
    SCHEMA_VERSION,
    NotificationMessage,
    first_attempt,
    parse_message,
    template_data,
)

AT = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _message() -> NotificationMessage:
    facts = OrderFacts(
        event_type=EventType.CREATED,
        order_id="5b0f6d1e-0000-4000-8000-000000000001",
        user_id="u-1",
        version=1,
        status="CREATED",
        occurred_at=AT,
        total=Decimal("12.50"),
        currency="EUR",
        items=(("Widget", 2),),
    )
    return NotificationMessage(
        delivery_id=uuid.UUID(int=1),
        notification_id=uuid.UUID(int=2),
        event_id=uuid.UUID(int=3),
        channel=Channel.EMAIL,
        event_type=EventType.CREATED,
        order_id=facts.order_id,
        user_id="u-1",
        recipient="ada@example.org",
        created_at=AT,
        data=template_data(facts, "Order received", "Your order 5b0f6d1e was received."),
    )


def test_the_document_is_camel_case_json_with_its_schema_version() -> None:
    document = orjson.loads(_message().to_bytes())
    assert document == {
        "schemaVersion": 1,
        "deliveryId": str(uuid.UUID(int=1)),
        "notificationId": str(uuid.UUID(int=2)),
        "eventId": str(uuid.UUID(int=3)),
        "channel": "email",
        "eventType": "order.created",
        "orderId": "5b0f6d1e-0000-4000-8000-000000000001",
        "userId": "u-1",
        "recipient": "ada@example.org",
        "attempt": 1,
        "createdAt": "2026-01-01T12:00:00Z",
        "data": {
            "orderId": "5b0f6d1e-0000-4000-8000-000000000001",
            "shortOrderId": "5b0f6d1e",
            "status": "CREATED",
            "version": 1,
            "occurredAt": "2026-01-01T12:00:00Z",
            "title": "Order received",
            "body": "Your order 5b0f6d1e was received.",
            "total": "12.50",
            "currency": "EUR",
            "reason": None,
            "items": [{"name": "Widget", "quantity": 2}],
        },
    }
    assert SCHEMA_VERSION == 1


def test_a_worker_reads_back_what_was_published() -> None:
    message = _message()
    assert parse_message(message.to_bytes()) == message


def test_headers_repeat_what_routing_needs() -> None:
    assert _message().headers() == {
        "schema-version": "1",
        "channel": "email",
        "event-type": "order.created",
    }


def test_unknown_fields_are_ignored_but_an_unknown_schema_version_is_refused() -> None:
    document = orjson.loads(_message().to_bytes())
    assert parse_message(orjson.dumps({**document, "newField": 1})) == _message()
    with pytest.raises(ValidationError):
        parse_message(orjson.dumps({**document, "schemaVersion": 2}))
    with pytest.raises(ValidationError):
        parse_message(b"not json")


def test_a_dead_letter_goes_out_again_as_its_first_attempt() -> None:
    published = _message().to_bytes()
    last = _message().model_copy(update={"attempt": 5}).to_bytes()
    assert first_attempt(last) == published
    assert first_attempt(published) == published
    with pytest.raises(ValidationError):
        first_attempt(b"not json")
