"""Helpers for the notifications integration tests: order events as the other services send
them, and a reader of the channel queues."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pika
import psycopg
from psycopg.rows import DictRow

from services.kit.events import Envelope
from services.kit.order_events import (
    ORDER_CONFIRMED,
    ORDER_CREATED,
    OrderConfirmed,
    OrderCreated,
    OrderLine,
    OrderStatusChanged,
)
from services.kit.outbox import event
from services.notifications.topology import WORK_QUEUES
from tests.support import Bearer

FAST_RETRIES: dict[str, Any] = {"retry_delays_seconds": (1, 2), "max_attempts": 3}
"""Retry delays and attempts for the worker tests (their own virtual host, their own queues)."""


async def set_preferences(client: httpx.AsyncClient, user: Bearer, body: dict[str, Any]) -> None:
    response = await client.put("/notifications/preferences", json=body, headers=user.headers)
    assert response.status_code == 200, response.text


def created(order_id: str, user_id: str) -> tuple[str, Envelope[Any]]:
    line = OrderLine(
        product_id=str(uuid.uuid4()),
        sku="SKU-W",
        name="Widget",
        quantity=2,
        unit_price=Decimal("5.00"),
        line_total=Decimal("10.00"),
    )
    data = OrderCreated(
        order_id=order_id,
        user_id=user_id,
        version=1,
        items=[line],
        total=Decimal("10.00"),
        currency="EUR",
        created_at=datetime.now(UTC),
    )
    return ORDER_CREATED, event("/services/orders", ORDER_CREATED, order_id, data)


def confirmed(order_id: str, user_id: str, version: int = 1) -> tuple[str, Envelope[Any]]:
    data = OrderConfirmed(
        order_id=order_id,
        user_id=user_id,
        version=version,
        reservation_expires_at=datetime.now(UTC),
    )
    return ORDER_CONFIRMED, event("/services/inventory", ORDER_CONFIRMED, order_id, data)


def status_changed(
    topic: str, order_id: str, user_id: str, version: int, status: str, previous: str
) -> tuple[str, Envelope[Any]]:
    data = OrderStatusChanged(
        order_id=order_id,
        user_id=user_id,
        version=version,
        status=status,
        previous_status=previous,
        actor="admin:tests",
        total=Decimal("10.00"),
        currency="EUR",
    )
    return topic, event("/services/orders", topic, order_id, data)


@dataclass
class Received:
    queue: str
    message_id: str | None
    headers: dict[str, Any]
    body: dict[str, Any]


@dataclass
class QueueReader:
    """Takes every message off the channel queues of one vhost and keeps them all."""

    amqp_url: str
    received: list[Received] = field(default_factory=list)

    def _drain(self) -> None:
        with pika.BlockingConnection(pika.URLParameters(self.amqp_url)) as connection:
            channel = connection.channel()
            for queue in WORK_QUEUES.values():
                while True:
                    method, properties, body = channel.basic_get(queue, auto_ack=True)
                    if method is None:
                        break
                    assert properties is not None
                    assert body is not None
                    self.received.append(
                        Received(
                            queue,
                            properties.message_id,
                            dict(properties.headers or {}),
                            orjson.loads(body),
                        )
                    )

    async def collect(self) -> list[Received]:
        await asyncio.to_thread(self._drain)
        return self.received

    def for_order(self, order_id: str, queue: str | None = None) -> list[Received]:
        return [
            r
            for r in self.received
            if r.body["orderId"] == order_id and (queue is None or r.queue == queue)
        ]


def notification(db: psycopg.Connection[DictRow]) -> uuid.UUID:
    """A notification row of its own, written straight to the table."""
    notification_id = uuid.uuid4()
    db.execute(
        "INSERT INTO notifications (id, user_id, order_id, event_id, event_type, order_version,"
        " title, body, data) VALUES (%s, 'u', %s, %s, 'order.confirmed', 2, 't', 'b', '{}')",
        (notification_id, uuid.uuid4(), uuid.uuid4()),
    )
    return notification_id


def delivery(db: psycopg.Connection[DictRow], notification_id: uuid.UUID, status: str) -> uuid.UUID:
    """A push delivery row in `status`, with a message only while pending."""
    delivery_id = uuid.uuid4()
    db.execute(
        "INSERT INTO deliveries (id, notification_id, channel, status, queue, payload)"
        " VALUES (%s, %s, 'push', %s, 'notifications.push', %s)",
        (delivery_id, notification_id, status, b"{}" if status == "pending" else None),
    )
    return delivery_id
