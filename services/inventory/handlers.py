"""The Kafka events inventory consumes, and what each one does.

Each message is handled in one transaction: the event id is claimed in `processed_events`
(a redelivery finds it claimed and changes nothing) together with the effect and any event
the effect emits (written to the outbox). The product cache is invalidated after the commit.
A message that cannot be parsed raises; the consumer retries it and then dead-letters it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from confluent_kafka import Message
from pydantic import BaseModel

from services.inventory.metrics import RESERVATIONS
from services.inventory.service import STOCK_CHANGING_OUTCOMES, InventoryService, Outcome
from services.kit.db import DictConnection
from services.kit.events import parse_envelope
from services.kit.logs import order_id_var
from services.kit.metrics import EVENTS_CONSUMED
from services.kit.order_events import (
    ORDER_CANCELLED,
    ORDER_CREATED,
    ORDER_SHIPPED,
    OrderCreated,
    OrderStatusChanged,
)
from services.kit.outbox import claim_event

log = logging.getLogger(__name__)
SERVICE = "inventory"

Effect = Callable[[InventoryService, DictConnection, Any], Awaitable[Outcome]]

# topic → (the data it carries, what inventory does with it)
HANDLERS: dict[str, tuple[type[BaseModel], Effect]] = {
    ORDER_CREATED: (OrderCreated, InventoryService.reserve),
    ORDER_CANCELLED: (OrderStatusChanged, InventoryService.release),
    ORDER_SHIPPED: (OrderStatusChanged, InventoryService.commit),
}
TOPICS = tuple(HANDLERS)


class EventHandler:
    """The consumer's per-message handler (see `services.kit.kafka.BatchConsumer`)."""

    def __init__(self, service: InventoryService) -> None:
        self.service = service

    async def __call__(self, message: Message) -> None:
        topic = message.topic() or ""
        await self.handle(topic, message.value() or b"")

    async def handle(self, topic: str, raw: bytes) -> Outcome:
        data_type, effect = HANDLERS[topic]
        envelope = parse_envelope(raw, data_type)
        token = order_id_var.set(envelope.subject)
        try:
            async with self.service.pool.connection() as conn, conn.transaction():
                if not await claim_event(conn, envelope.id, topic):
                    EVENTS_CONSUMED.labels(SERVICE, topic, "duplicate").inc()
                    log.info("duplicate event ignored", extra={"event_id": envelope.id})
                    return "ignored"
                outcome = await effect(self.service, conn, envelope.data)
            EVENTS_CONSUMED.labels(SERVICE, topic, "processed").inc()
            if outcome in STOCK_CHANGING_OUTCOMES:
                await self.service.cache.invalidate()
            if outcome in ("confirmed", "failed", "released", "committed"):
                RESERVATIONS.labels(outcome).inc()
            return outcome
        finally:
            order_id_var.reset(token)
