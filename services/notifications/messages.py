"""The message the notifications service publishes to a channel's queue: the workers' contract.

One JSON document per delivery (camelCase, UTF-8), `schemaVersion` 1. A consumer must refuse a
`schemaVersion` it does not know (dead-letter it: the message is malformed for it) and ignore
fields it does not know (new optional fields do not change the version). The AMQP properties
repeat what routing needs: `message_id` is the delivery id (the idempotency key: a message may
arrive twice, after a relay crash or a redelivery, and a worker dedupes on it), `type` is the
event type, `content_type` is application/json, and the headers carry `schema-version`,
`channel` and `event-type`. See services/notifications/README.md for an example.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from services.notifications.domain import Channel, EventType, OrderFacts, short_id

SCHEMA_VERSION: Literal[1] = 1
CONTENT_TYPE = "application/json"


class _Document(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )


class OrderLineData(_Document):
    name: str
    quantity: int


class TemplateData(_Document):
    """What a template of the event type may show about the order."""

    order_id: str
    short_order_id: str
    status: str
    version: int
    occurred_at: datetime
    title: str
    body: str
    """The in-app title and text, ready for a push notification or a subject line."""
    total: Decimal | None = None
    currency: str | None = None
    reason: str | None = None
    items: list[OrderLineData] = []


class NotificationMessage(_Document):
    schema_version: Literal[1] = SCHEMA_VERSION
    delivery_id: uuid.UUID
    """Stable across republishing: the idempotency key of this channel's delivery."""
    notification_id: uuid.UUID
    event_id: uuid.UUID
    channel: Channel
    event_type: EventType
    order_id: str
    user_id: str
    recipient: str
    """The email address (email), the E.164 phone number (sms) or the user id (push)."""
    attempt: int = 1
    """1 as published by the service; a worker that parks the message for a retry republishes
    it with attempt + 1."""
    created_at: datetime
    data: TemplateData

    def to_document(self) -> dict[str, Any]:
        """The message as its JSON document (camelCase): what templates see."""
        return self.model_dump(mode="json", by_alias=True)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_document())

    def headers(self) -> dict[str, str]:
        return message_headers(self.channel, self.event_type)


def message_headers(channel: str, event_type: str) -> dict[str, str]:
    """The AMQP headers of a message (for routing and tracing without parsing the body)."""
    return {
        "schema-version": str(SCHEMA_VERSION),
        "channel": str(channel),
        "event-type": str(event_type),
    }


def template_data(facts: OrderFacts, title: str, body: str) -> TemplateData:
    return TemplateData(
        order_id=facts.order_id,
        short_order_id=short_id(facts.order_id),
        status=facts.status,
        version=facts.version,
        occurred_at=facts.occurred_at,
        title=title,
        body=body,
        total=facts.total,
        currency=facts.currency,
        reason=facts.reason,
        items=[OrderLineData(name=name, quantity=qty) for name, qty in facts.items],
    )


def parse_message(raw: bytes) -> NotificationMessage:
    """A message as a worker reads it; raises `ValueError` (pydantic's) for a malformed one."""
    return NotificationMessage.model_validate_json(raw)


def first_attempt(raw: bytes) -> bytes:
    """A dead letter's message as it is sent again: the same message at attempt 1, as the relay
    first published it (a message that was retried died at its last attempt); raises
    `ValueError` for a malformed one."""
    return parse_message(raw).model_copy(update={"attempt": 1}).to_bytes()
