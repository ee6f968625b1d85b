"""Helpers for the inventory integration tests: settings, tokens, events, a Kafka reader."""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import httpx
from confluent_kafka import Consumer, Message

from devstack.testing import KafkaServer, PostgresServer, RedisServer
from services.inventory.handlers import EVENT_HANDLERS as INVENTORY_HANDLERS
from services.inventory.settings import Settings
from services.kit.consumer import EventShell
from services.kit.events import Envelope, peek_attributes
from services.kit.order_events import (
    ORDER_CREATED,
    STATUS_TOPIC,
    OrderCreated,
    OrderLine,
    OrderStatus,
    OrderStatusChanged,
)
from services.kit.outbox import event
from tests.integration.fixtures import fresh_consumer_group
from tests.signing import token_env
from tests.support import Bearer

T = TypeVar("T")
_redis_databases = iter(range(1, 16))


def inventory_settings(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    kafka_server: KafkaServer,
    database: str,
    **overrides: Any,
) -> Settings:
    # Each test module gets its own Redis database, so one module's cached pages (built from
    # its own Postgres database) are never served to another.
    redis_url = redis_server.url.rsplit("/", 1)[0] + f"/{next(_redis_databases)}"
    values: dict[str, Any] = {
        **postgres_server.env(database),
        "APP_ENV": "test",
        "REDIS_URL": redis_url,
        "KAFKA_BROKER": kafka_server.bootstrap,
        **token_env(),
        # From the topics' current end: the session's Kafka holds every earlier suite's orders,
        # and a group reading them all would count their refusals in this process's metrics
        # while a test compares those counters.
        "KAFKA_CONSUMER_GROUP": fresh_consumer_group(
            kafka_server, "inventory-test", INVENTORY_HANDLERS
        ),
        "DB_POOL_MIN": 2,
        "DB_POOL_MAX": 20,
    }
    values.update(overrides)
    return Settings(**values)


def order_created(
    lines: Iterable[tuple[str, int]], *, order_id: str | None = None, user_id: str = "buyer"
) -> Envelope[Any]:
    """An order.created envelope as the orders service writes it (prices are not inventory's)."""
    order_id = order_id or str(uuid.uuid4())
    items = [
        OrderLine(
            product_id=product_id,
            sku="SKU",
            name="Product",
            quantity=quantity,
            unit_price=Decimal("1.00"),
            line_total=Decimal(quantity),
        )
        for product_id, quantity in lines
    ]
    data = OrderCreated(
        order_id=order_id,
        user_id=user_id,
        version=1,
        items=items,
        total=sum((item.line_total for item in items), Decimal(0)),
        currency="USD",
        created_at=datetime.now(UTC),
    )
    return event("/orders", ORDER_CREATED, order_id, data)


def status_changed(
    order_id: str,
    status: OrderStatus,
    *,
    previous: OrderStatus = "CONFIRMED",
    version: int = 3,
    user_id: str = "buyer",
) -> tuple[str, Envelope[Any]]:
    """An order.shipped / order.cancelled envelope and its topic."""
    data = OrderStatusChanged(
        order_id=order_id,
        user_id=user_id,
        version=version,
        status=status,
        previous_status=previous,
        actor="admin" if status == "SHIPPED" else "customer",
        total=Decimal("1.00"),
        currency="USD",
    )
    topic = STATUS_TOPIC[status]
    return topic, event("/orders", topic, order_id, data)


@dataclass(frozen=True)
class Received:
    topic: str
    key: str
    value: bytes
    headers: dict[str, str]

    @property
    def attributes(self) -> dict[str, Any]:
        return peek_attributes(self.value)


class TopicReader:
    """Reads topics from the beginning in a thread and files each message by its key."""

    def __init__(self, bootstrap: str, topics: Iterable[str]) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"inventory-test-reader-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
            }
        )
        self._consumer.subscribe(list(topics))
        self._by_key: dict[str, list[Received]] = defaultdict(list)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="topic-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for message in self._consumer.consume(500, 0.1):
                if message.error() is not None:
                    continue
                received = Received(
                    topic=message.topic() or "",
                    key=(message.key() or b"").decode(),
                    value=message.value() or b"",
                    headers=_headers(message),
                )
                with self._lock:
                    self._by_key[received.key].append(received)
        self._consumer.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def received(self, key: str, topic: str | None = None) -> list[Received]:
        with self._lock:
            found = list(self._by_key.get(key, ()))
        return [r for r in found if topic is None or r.topic == topic]


def _headers(message: Message) -> dict[str, str]:
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return {
        name: value.decode() if isinstance(value, bytes) else (value or "") for name, value in pairs
    }


async def create_product(
    client: Any, admin: Bearer, *, stock: int = 10, **fields: Any
) -> dict[str, Any]:
    """A new product through the admin API, with a unique sku unless one is given."""
    body: dict[str, Any] = {
        "sku": f"T-{uuid.uuid4().hex[:12]}",
        "name": "Test product",
        "price": "10.00",
        "currency": "USD",
        "initialStock": stock,
    }
    body.update(fields)
    response = await client.post("/inventory/products", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    return product


async def stock_levels(client: httpx.AsyncClient, product_id: str) -> tuple[int, int, int]:
    """On hand, reserved and available units of a product."""
    body = (await client.get(f"/inventory/stock/{product_id}")).json()
    return body["onHand"], body["reserved"], body["available"]


async def apply_event(shell: EventShell[Any], topic: str, event: Envelope[Any]) -> str:
    """Apply one event as the consumer does, wait for its after-commit effects, and return
    its outcome ("duplicate" for a redelivery)."""
    applied = await shell.handle(topic, event.to_bytes())
    await shell.after_commit.drained()
    return applied.outcome if applied is not None else "duplicate"
