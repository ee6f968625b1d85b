"""The orders service's consumer: inventory's answers arrive on real Kafka, as inventory sends them.

Each event is applied once, in one transaction with its event id; a redelivery, a stale answer
or an event about an unknown order changes nothing, and an unreadable one is dead-lettered.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
from confluent_kafka import Consumer, Message
from fastapi import FastAPI
from psycopg.rows import DictRow

from devstack.testing import KafkaServer
from services.kit.db import connect
from services.kit.events import Envelope, parse_envelope
from services.kit.kafka import EventProducer, dead_letter_topic
from services.kit.order_events import (
    ORDER_CANCELLED,
    ORDER_CONFIRMED,
    ORDER_DELIVERED,
    ORDER_FAILED,
    ORDER_SHIPPED,
    RESERVATION_EXPIRED,
    LineRefusal,
    OrderConfirmed,
    OrderFailed,
    OrderStatusChanged,
    ReservationExpired,
)
from services.kit.outbox import event
from services.orders import repository as repo
from services.orders.domain import Status
from services.orders.settings import Settings
from tests.integration.consumed import as_messages
from tests.integration.orders.support import (
    ADDRESS,
    CatalogueStub,
    LiveListener,
)
from tests.support import Bearer, eventually

pytestmark = pytest.mark.integration
Db = psycopg.Connection[DictRow]


async def place(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer
) -> dict[str, Any]:
    pen = catalogue.add("Pen", "1.50")
    response = await client.post(
        "/orders",
        json={"items": [{"productId": pen, "quantity": 2}], "shippingAddress": ADDRESS},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def confirmed(order: dict[str, Any]) -> Envelope[Any]:
    data = OrderConfirmed(
        order_id=order["id"],
        user_id=order["userId"],
        version=1,
        reservation_expires_at=datetime.now(UTC) + timedelta(minutes=15),
    )
    return event("/services/inventory", ORDER_CONFIRMED, order["id"], data)


async def send(producer: EventProducer, topic: str, envelope: Envelope[Any]) -> None:
    await producer.publish(topic, envelope.subject, envelope.to_bytes())


async def order_in(
    client: httpx.AsyncClient, user: Bearer, order_id: str, status: str
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        body: dict[str, Any] = (
            await client.get(f"/orders/{order_id}", headers=user.headers)
        ).json()
        return body if body["status"] == status else None

    return await eventually(check, what=f"order {order_id} to be {status}")


async def metric(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    """The value of one sample on /metrics (0 when absent)."""
    wanted = name + (
        "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""
    )
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def outbox_events(db: Db, order_id: str, topic: str) -> list[Envelope[OrderStatusChanged]]:
    rows = db.execute(
        "SELECT payload FROM outbox WHERE message_key = %s AND topic = %s ORDER BY id",
        (order_id, topic),
    ).fetchall()
    return [parse_envelope(bytes(row["payload"]), OrderStatusChanged) for row in rows]


async def test_confirmed_moves_the_order_and_pushes_it_live(
    client: httpx.AsyncClient,
    catalogue: CatalogueStub,
    producer: EventProducer,
    user: Bearer,
    settings: Settings,
) -> None:
    order = await place(client, catalogue, user)
    answer = confirmed(order)
    before = await metric(client, "orders_create_to_confirmed_seconds_count")
    async with LiveListener(settings.redis_url) as live:
        await send(producer, ORDER_CONFIRMED, answer)
        done = await order_in(client, user, order["id"], "CONFIRMED")

        async def pushed() -> list[dict[str, Any]]:
            return [u for u in live.for_order(order["id"]) if u["status"] == "CONFIRMED"]

        [push] = await eventually(pushed, within=5, what="the CONFIRMED push")

    assert done["version"] == 2
    entry = done["timeline"][-1]
    assert (entry["status"], entry["version"], entry["actor"]) == ("CONFIRMED", 2, "inventory")
    assert entry["eventId"] == answer.id
    assert push["version"] == 2
    assert push["room"] == [f"user:{user.id}", "admins"]
    assert await metric(client, "orders_create_to_confirmed_seconds_count") == before + 1


async def test_a_duplicated_message_changes_nothing(
    client: httpx.AsyncClient, catalogue: CatalogueStub, producer: EventProducer, user: Bearer
) -> None:
    order = await place(client, catalogue, user)
    answer = confirmed(order)
    duplicates = await metric(
        client,
        "events_consumed_total",
        service="orders",
        topic=ORDER_CONFIRMED,
        outcome="duplicate",
    )
    await send(producer, ORDER_CONFIRMED, answer)
    first = await order_in(client, user, order["id"], "CONFIRMED")
    await send(producer, ORDER_CONFIRMED, answer)

    async def ignored() -> bool:
        now = await metric(
            client,
            "events_consumed_total",
            service="orders",
            topic=ORDER_CONFIRMED,
            outcome="duplicate",
        )
        return now == duplicates + 1

    await eventually(ignored, what="the duplicate to be consumed and ignored")
    again = (await client.get(f"/orders/{order['id']}", headers=user.headers)).json()
    assert again == first
    assert [e["version"] for e in again["timeline"]] == [1, 2]


async def test_failed_keeps_inventorys_reasons(
    client: httpx.AsyncClient, catalogue: CatalogueStub, producer: EventProducer, user: Bearer
) -> None:
    order = await place(client, catalogue, user)
    product = order["items"][0]["productId"]
    refusal = OrderFailed(
        order_id=order["id"],
        user_id=user.id,
        version=1,
        reason="insufficient stock",
        lines=[
            LineRefusal(product_id=product, requested=2, available=1, reason="insufficient-stock")
        ],
    )
    answer = event("/services/inventory", ORDER_FAILED, order["id"], refusal)
    await send(producer, ORDER_FAILED, answer)

    failed = await order_in(client, user, order["id"], "FAILED")
    entry = failed["timeline"][-1]
    assert entry["eventId"] == answer.id
    assert entry["reason"] == (
        f"insufficient stock: {product}: insufficient-stock (requested 2, available 1)"
    )
    cancel = await client.post(f"/orders/{order['id']}/cancel", headers=user.headers)
    assert cancel.status_code == 409
    assert cancel.json()["allowed"] == []


async def test_a_stale_answer_is_ignored(
    client: httpx.AsyncClient, catalogue: CatalogueStub, producer: EventProducer, user: Bearer
) -> None:
    order = await place(client, catalogue, user)
    await client.post(f"/orders/{order['id']}/cancel", headers=user.headers)
    stale = await metric(client, "orders_events_ignored_total", topic=ORDER_CONFIRMED, why="stale")
    await send(producer, ORDER_CONFIRMED, confirmed(order))

    async def ignored() -> bool:
        now = await metric(
            client, "orders_events_ignored_total", topic=ORDER_CONFIRMED, why="stale"
        )
        return now == stale + 1

    await eventually(ignored, what="the stale answer to be consumed")
    after = (await client.get(f"/orders/{order['id']}", headers=user.headers)).json()
    assert after["status"] == "CANCELLED"
    assert [e["status"] for e in after["timeline"]] == ["CREATED", "CANCELLED"]


async def test_an_expired_reservation_cancels_and_tells_the_others(
    client: httpx.AsyncClient,
    catalogue: CatalogueStub,
    producer: EventProducer,
    user: Bearer,
    db: Db,
) -> None:
    order = await place(client, catalogue, user)
    await send(producer, ORDER_CONFIRMED, confirmed(order))
    await order_in(client, user, order["id"], "CONFIRMED")
    expiry = ReservationExpired(
        order_id=order["id"], user_id=user.id, version=1, expired_at=datetime.now(UTC)
    )
    await send(
        producer,
        RESERVATION_EXPIRED,
        event("/services/inventory", RESERVATION_EXPIRED, order["id"], expiry),
    )

    cancelled = await order_in(client, user, order["id"], "CANCELLED")
    entry = cancelled["timeline"][-1]
    assert (entry["version"], entry["actor"], entry["reason"]) == (
        3,
        "inventory",
        "reservation expired",
    )
    [told] = outbox_events(db, order["id"], ORDER_CANCELLED)
    assert told.id == entry["eventId"]
    assert (told.data.status, told.data.previous_status) == ("CANCELLED", "CONFIRMED")
    assert (told.data.actor, told.data.version) == ("inventory", 3)


async def test_admin_ships_and_delivers(
    client: httpx.AsyncClient,
    catalogue: CatalogueStub,
    producer: EventProducer,
    user: Bearer,
    admin: Bearer,
    db: Db,
) -> None:
    order = await place(client, catalogue, user)
    await send(producer, ORDER_CONFIRMED, confirmed(order))
    await order_in(client, user, order["id"], "CONFIRMED")
    path = f"/orders/{order['id']}/status"

    shipped = await client.put(path, json={"status": "SHIPPED"}, headers=admin.headers)
    assert shipped.status_code == 200, shipped.text
    cancel_too_late = await client.post(f"/orders/{order['id']}/cancel", headers=user.headers)
    assert cancel_too_late.status_code == 409
    assert cancel_too_late.json()["allowed"] == []
    delivered = await client.put(
        path, json={"status": "DELIVERED", "expectedVersion": 3}, headers=admin.headers
    )
    assert delivered.status_code == 200, delivered.text
    body = delivered.json()
    assert [(e["status"], e["version"]) for e in body["timeline"]] == [
        ("CREATED", 1),
        ("CONFIRMED", 2),
        ("SHIPPED", 3),
        ("DELIVERED", 4),
    ]
    [ship_event] = outbox_events(db, order["id"], ORDER_SHIPPED)
    [deliver_event] = outbox_events(db, order["id"], ORDER_DELIVERED)
    assert (ship_event.data.version, ship_event.data.previous_status) == (3, "CONFIRMED")
    assert deliver_event.data.version == 4
    assert ship_event.data.actor == f"admin:{admin.id}"
    assert ship_event.data.total == Decimal(order["total"])
    final = await client.put(path, json={"status": "CANCELLED"}, headers=admin.headers)
    assert final.status_code == 409
    assert final.json()["allowed"] == []


async def test_an_unreadable_event_is_dead_lettered(
    client: httpx.AsyncClient, producer: EventProducer, kafka_server: KafkaServer
) -> None:
    key = f"poison-{uuid.uuid4()}"
    await producer.publish(ORDER_CONFIRMED, key, b'{"not": "an event"}')

    def read_dead_letters() -> list[Message]:
        consumer = Consumer(
            {
                "bootstrap.servers": kafka_server.bootstrap,
                "group.id": f"dlq-reader-{uuid.uuid4()}",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([dead_letter_topic(ORDER_CONFIRMED)])
        found: list[Message] = []
        deadline = time.monotonic() + 30
        try:
            while not found and time.monotonic() < deadline:
                batch = consumer.consume(100, 0.5)
                found = [m for m in batch if m.error() is None and m.key() == key.encode()]
        finally:
            consumer.close()
        return found

    [dead] = await asyncio.to_thread(read_dead_letters)
    headers = dict(dead.headers() or [])
    assert headers["dlq-source-topic"] == ORDER_CONFIRMED.encode()
    error = headers["dlq-error"]
    assert isinstance(error, bytes)
    assert b"specversion" in error


async def test_an_event_about_an_unknown_order_is_ignored(
    client: httpx.AsyncClient, producer: EventProducer, db: Db
) -> None:
    ghost = {"id": str(uuid.uuid4()), "userId": str(uuid.uuid4())}
    answer = confirmed(ghost)
    unknown = await metric(
        client, "orders_events_ignored_total", topic=ORDER_CONFIRMED, why="unknown-order"
    )
    await send(producer, ORDER_CONFIRMED, answer)

    async def ignored() -> bool:
        now = await metric(
            client, "orders_events_ignored_total", topic=ORDER_CONFIRMED, why="unknown-order"
        )
        return now == unknown + 1

    await eventually(ignored, what="the event to be consumed")
    assert db.execute("SELECT 1 FROM orders WHERE id = %s", (ghost["id"],)).fetchone() is None
    # An answer dedupes itself through the order's timeline: nothing is claimed for it.
    assert (
        db.execute("SELECT 1 FROM processed_events WHERE event_id = %s", (answer.id,)).fetchone()
        is None
    )


def failed(order: dict[str, Any]) -> Envelope[Any]:
    refusal = OrderFailed(
        order_id=order["id"], user_id=order["userId"], version=1, reason="out of stock", lines=[]
    )
    return event("/services/inventory", ORDER_FAILED, order["id"], refusal)


async def test_a_group_of_answers_is_one_statement_and_each_answer_counts_as_alone(
    orders_app: FastAPI,
    client: httpx.AsyncClient,
    catalogue: CatalogueStub,
    user: Bearer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shell = orders_app.state.event_shell
    first, second, third, cancelled = [await place(client, catalogue, user) for _ in range(4)]
    await client.post(f"/orders/{cancelled['id']}/cancel", headers=user.headers)
    ghost = {"id": str(uuid.uuid4()), "userId": user.id}
    yes = confirmed(first)
    group = [
        (ORDER_CONFIRMED, yes),
        (ORDER_FAILED, failed(second)),
        (ORDER_CONFIRMED, yes),  # a copy in the same group
        (ORDER_CONFIRMED, confirmed(third)),
        (ORDER_CONFIRMED, confirmed(cancelled)),  # stale: the customer cancelled
        (ORDER_FAILED, failed(first)),  # stale: the first answer confirmed it
        (ORDER_CONFIRMED, confirmed(ghost)),  # an unknown order
    ]
    statements: list[int] = []
    move_many = repo.move_many

    async def counted(conn: Any, moves: Any, *, actor: str) -> Any:
        statements.append(len(moves))
        return await move_many(conn, moves, actor=actor)

    monkeypatch.setattr(repo, "move_many", counted)

    async def counts() -> tuple[float, ...]:
        return (
            await metric(client, "orders_events_ignored_total", topic=ORDER_CONFIRMED, why="stale"),
            await metric(client, "orders_events_ignored_total", topic=ORDER_FAILED, why="stale"),
            await metric(
                client, "orders_events_ignored_total", topic=ORDER_CONFIRMED, why="unknown-order"
            ),
            await metric(
                client,
                "events_consumed_total",
                service="orders",
                topic=ORDER_CONFIRMED,
                outcome="duplicate",
            ),
        )

    before = await counts()
    await shell.apply_group(as_messages(*group))
    await shell.apply_group(as_messages((ORDER_CONFIRMED, yes), first_offset=len(group)))

    assert statements == [7, 1]
    assert [a - b for a, b in zip(await counts(), before, strict=True)] == [1, 1, 1, 2]
    views = [
        (await client.get(f"/orders/{o['id']}", headers=user.headers)).json()
        for o in (first, second, third, cancelled)
    ]
    assert [v["status"] for v in views] == ["CONFIRMED", "FAILED", "CONFIRMED", "CANCELLED"]
    assert [[e["version"] for e in v["timeline"]] for v in views] == [[1, 2]] * 4
    assert views[0]["timeline"][-1]["eventId"] == yes.id
    assert views[1]["timeline"][-1]["reason"] == "out of stock"


async def test_a_group_of_answers_finds_its_orders_by_index_in_a_large_table(
    orders_app: FastAPI, settings: Settings
) -> None:
    """The planner guesses a hundred rows for the answers' JSON; on that guess alone it would
    scan a table of thousands of orders whole (a hash join) for every group."""
    conn = await connect(settings.db_conninfo, "orders")
    try:
        async with conn.transaction(force_rollback=True):
            await conn.execute(
                """
                INSERT INTO orders (id, user_id, status, version, total, currency,
                                    shipping_address, created_at, updated_at)
                SELECT gen_random_uuid(), 'bulk-' || n, 'CREATED', 1, 1, 'USD', '{}', now(),
                       now()
                FROM generate_series(1, 5000) AS n
                """
            )
            cursor = await conn.execute(
                "SELECT id FROM orders WHERE user_id IN ('bulk-7', 'bulk-4000') ORDER BY user_id"
            )
            ids = [row["id"] for row in await cursor.fetchall()]
            moves = [
                repo.Move(order_id, Status.CONFIRMED, (Status.CREATED,), None, str(uuid.uuid4()))
                for order_id in ids
            ]

            moved = await repo.move_many(conn, moves, actor="inventory")

            cursor = await conn.execute(
                "SELECT seq_scan FROM pg_stat_xact_user_tables"
                " WHERE schemaname = 'orders' AND relname = 'orders'"
            )
            scans = await cursor.fetchone()
    finally:
        await conn.close()
    assert sorted(moved) == [0, 1]
    assert [order.status for order, _ in moved.values()] == [Status.CONFIRMED] * 2
    assert scans is not None
    assert scans["seq_scan"] == 0
