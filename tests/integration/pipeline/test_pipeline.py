"""Issue 3's acceptance, end to end: orders and inventory over real Kafka, pushes over Socket.IO.

Every assertion is made through the services' own APIs (and, for exactly-once, their tables).
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from services.kit.kafka import EventProducer
from services.kit.order_events import ORDER_CONFIRMED, ORDER_CREATED
from tests.integration.pipeline.conftest import Platform
from tests.support import eventually

pytestmark = pytest.mark.integration


def rows(platform: Platform, query: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(platform.db_conninfo, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()


async def test_happy_path_is_confirmed_and_pushed_to_the_owner(platform: Platform) -> None:
    product = await platform.product(stock=5, price="7.25")
    user, stranger = platform.user(), platform.user()
    async with platform.live(user) as live, platform.live(stranger) as other:
        response = await platform.place(user, (product, 2))
        assert response.status_code == 201, response.text
        order_id = response.json()["id"]
        pushed = await live.update(order_id, "CONFIRMED")
        created_push = await live.update(order_id, "CREATED")

    assert pushed["userId"] == user.id
    assert (pushed["version"], created_push["version"]) == (2, 1)
    assert other.for_order(order_id) == [], "a push goes to the owner and admins only"
    order = await platform.order(user, order_id)
    assert order["status"] == "CONFIRMED"
    assert order["total"] == "14.50"
    assert [(e["status"], e["version"], e["actor"]) for e in order["timeline"]] == [
        ("CREATED", 1, f"user:{user.id}"),
        ("CONFIRMED", 2, "inventory"),
    ]
    assert await platform.stock(product) == {"onHand": 5, "reserved": 2, "available": 3}

    # A client that reconnects asks the gateway for what it missed since the version it has.
    async with platform.live(user) as again:
        answer = await again.sio.call(
            "order.sync", {"orderId": order_id, "sinceVersion": 1}, timeout=10
        )
    assert answer["orderId"] == order_id
    assert [(u["status"], u["version"]) for u in answer["updates"]] == [("CONFIRMED", 2)]


async def test_insufficient_stock_fails_with_reasons_and_reserves_nothing(
    platform: Platform,
) -> None:
    plenty = await platform.product(stock=10)
    scarce = await platform.product(stock=1)
    user = platform.user()
    response = await platform.place(user, (plenty, 3), (scarce, 2))
    assert response.status_code == 201, response.text

    order = await platform.settled(user, response.json()["id"])
    assert order["status"] == "FAILED"
    reason = order["timeline"][-1]["reason"]
    assert f"{scarce}: insufficient-stock (requested 2, available 1)" in reason
    assert plenty not in reason
    assert await platform.stock(plenty) == {"onHand": 10, "reserved": 0, "available": 10}
    assert await platform.stock(scarce) == {"onHand": 1, "reserved": 0, "available": 1}


async def test_fifty_concurrent_orders_for_ten_units_confirm_exactly_ten(
    platform: Platform,
) -> None:
    product = await platform.product(stock=10)
    buyer = platform.user()
    responses = await asyncio.gather(*(platform.place(buyer, (product, 1)) for _ in range(50)))
    assert [r.status_code for r in responses] == [201] * 50

    orders = await platform.all_settled(buyer, [r.json()["id"] for r in responses])
    statuses = [o["status"] for o in orders.values()]
    assert statuses.count("CONFIRMED") == 10
    assert statuses.count("FAILED") == 40
    assert await platform.stock(product) == {"onHand": 10, "reserved": 10, "available": 0}


# Every background job of both services: relays, consumers, periodic jobs, after-commit runners.
JOBS = [
    ("orders", "outbox-relay"),
    ("orders", "consumer"),
    ("orders", "after-commit"),
    ("orders", "idempotency-key-purge"),
    ("orders", "outbox-purge"),
    ("orders", "catalogue-changes"),
    ("orders", "unsettled-orders"),
    ("inventory", "outbox-relay"),
    ("inventory", "consumer"),
    ("inventory", "after-commit"),
    ("inventory", "reservation-sweeper"),
    ("inventory", "outbox-purge"),
]


def test_the_kill_tests_cover_every_job(platform: Platform) -> None:
    registered = {(s, job) for s in ("orders", "inventory") for job in platform.runtime(s).names}
    assert registered == set(JOBS)


@pytest.mark.parametrize(("service", "job"), JOBS, ids=[f"{s} {j}" for s, j in JOBS])
async def test_killing_a_worker_mid_stream_settles_every_order_exactly_once(
    platform: Platform, service: str, job: str
) -> None:
    product = await platform.product(stock=1000)
    buyer = platform.user()
    placed: list[str] = []

    async def feed(count: int) -> None:
        for _ in range(count):
            response = await platform.place(buyer, (product, 1))
            assert response.status_code == 201, response.text
            placed.append(response.json()["id"])
            await asyncio.sleep(0.02)

    feeder = asyncio.create_task(feed(30))

    async def flowing() -> bool:
        return len(placed) >= 8

    await eventually(flowing, what="orders to flow")
    runtime = platform.runtime(service)
    await runtime.kill(job)  # fails loudly (JobStuck) if the job does not end
    killed_at = len(placed)
    assert runtime.states()[job] == "stopped"
    assert job in runtime.readiness_problems()
    await asyncio.sleep(0.6)  # orders keep coming while the worker is dead
    runtime.start(job)
    assert runtime.states()[job] == "running"
    await feeder
    assert len(placed) > killed_at, "orders must arrive while the worker is down"

    orders = await platform.all_settled(buyer, placed)
    for order in orders.values():
        assert [(e["status"], e["version"]) for e in order["timeline"]] == [
            ("CREATED", 1),
            ("CONFIRMED", 2),
        ], order["id"]
    assert await platform.stock(product) == {"onHand": 1000, "reserved": 30, "available": 970}
    created = rows(
        platform,
        "SELECT message_key, count(*) AS n FROM orders.outbox"
        " WHERE topic = %s AND message_key = ANY(%s) GROUP BY message_key",
        ORDER_CREATED,
        placed,
    )
    assert sorted(r["n"] for r in created) == [1] * 30


async def test_a_duplicated_kafka_message_changes_nothing(
    platform: Platform, kafka_server: Any
) -> None:
    product = await platform.product(stock=5)
    user = platform.user()
    response = await platform.place(user, (product, 1))
    order_id = response.json()["id"]
    before = await platform.settled(user, order_id)
    assert before["status"] == "CONFIRMED"

    [created] = rows(
        platform,
        "SELECT payload FROM orders.outbox WHERE message_key = %s AND topic = %s",
        order_id,
        ORDER_CREATED,
    )
    [confirmed] = rows(
        platform,
        "SELECT payload FROM inventory.outbox WHERE message_key = %s AND topic = %s",
        order_id,
        ORDER_CONFIRMED,
    )
    duplicates_before = await _duplicates(platform)
    producer = EventProducer(kafka_server.bootstrap, "replayer", service="tests")
    try:
        for _ in range(2):
            await producer.publish(ORDER_CREATED, order_id, bytes(created["payload"]))
            await producer.publish(ORDER_CONFIRMED, order_id, bytes(confirmed["payload"]))
    finally:
        await asyncio.to_thread(producer.close)

    async def absorbed() -> bool:
        inventory, orders = await _duplicates(platform)
        return inventory >= duplicates_before[0] + 2 and orders >= duplicates_before[1] + 2

    await eventually(absorbed, what="both services to see the copies")
    assert await platform.order(user, order_id) == before
    assert await platform.stock(product) == {"onHand": 5, "reserved": 1, "available": 4}


async def _duplicates(platform: Platform) -> tuple[float, float]:
    """Redeliveries ignored so far: by inventory (order.created) and by orders (confirmed)."""
    text = (await platform.http.get(f"{platform.orders_url}/metrics")).text
    inventory = orders = 0.0
    for line in text.splitlines():
        if line.startswith(
            'events_consumed_total{outcome="duplicate",service="inventory",topic="order.created"}'
        ):
            inventory = float(line.rsplit(" ", 1)[1])
        if line.startswith(
            'events_consumed_total{outcome="duplicate",service="orders",topic="order.confirmed"}'
        ):
            orders = float(line.rsplit(" ", 1)[1])
    return inventory, orders


async def test_client_sent_prices_are_refused_and_the_catalogue_prices_the_order(
    platform: Platform,
) -> None:
    product = await platform.product(stock=5, price="19.99")
    user = platform.user()
    address = {"name": "A", "line1": "B", "city": "C", "postalCode": "1", "country": "FR"}
    response = await platform.http.post(
        f"{platform.orders_url}/orders",
        json={
            "items": [{"productId": product, "quantity": 2, "unitPrice": "0.01", "price": "0"}],
            "shippingAddress": address,
            "total": "0.02",
        },
        headers=user.headers,
    )
    assert response.status_code == 422, response.text
    refused = {error["field"] for error in response.json()["errors"]}
    assert refused == {"items.0.unitPrice", "items.0.price", "total"}

    response = await platform.http.post(
        f"{platform.orders_url}/orders",
        json={"items": [{"productId": product, "quantity": 2}], "shippingAddress": address},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert (order["total"], order["items"][0]["unitPrice"]) == ("39.98", "19.99")
    settled = await platform.settled(user, order["id"])
    assert Decimal(settled["total"]) == Decimal("39.98")


async def test_a_price_change_in_inventory_reaches_the_next_order_priced_from_memory(
    platform: Platform,
) -> None:
    product = await platform.product(stock=50, price="5.00")
    user = platform.user()
    catalogue = platform.orders_app.state.orders.catalogue

    async def confirmed() -> bool:
        return bool(catalogue.confirmed)

    await eventually(confirmed, within=10, what="the orders copy to confirm the catalogue")
    first = await platform.place(user, (product, 1))
    assert first.status_code == 201, first.text
    asked_before = platform.catalogue_requests()
    second = await platform.place(user, (product, 1))
    assert second.json()["total"] == "5.00"
    assert platform.catalogue_requests() == asked_before, "priced from the copy in memory"

    epoch = catalogue.epoch
    edited = await platform.http.patch(
        f"{platform.inventory_url}/inventory/products/{product}",
        json={"price": "7.25"},
        headers=platform.admin.headers,
    )
    assert edited.status_code == 200, edited.text

    async def dropped() -> bool:
        return bool(catalogue.epoch > epoch)

    # Heard over pub/sub at once; a lost message is caught by the next check (5 s here).
    await eventually(dropped, within=12, what="the orders copy to hear the catalogue change")
    third = await platform.place(user, (product, 2))
    assert third.status_code == 201, third.text
    assert (third.json()["items"][0]["unitPrice"], third.json()["total"]) == ("7.25", "14.50")


async def test_another_users_order_is_404(platform: Platform) -> None:
    product = await platform.product(stock=5)
    owner, stranger = platform.user(), platform.user()
    order_id = (await platform.place(owner, (product, 1))).json()["id"]
    for path in (f"/orders/{order_id}", f"/orders/{order_id}/timeline"):
        response = await platform.http.get(f"{platform.orders_url}{path}", headers=stranger.headers)
        assert response.status_code == 404
    cancel = await platform.http.post(
        f"{platform.orders_url}/orders/{order_id}/cancel", headers=stranger.headers
    )
    assert cancel.status_code == 404
    admin_view = await platform.http.get(
        f"{platform.orders_url}/orders/{order_id}", headers=platform.admin.headers
    )
    assert admin_view.status_code == 200


async def test_illegal_transitions_are_409_and_shipping_commits_stock(platform: Platform) -> None:
    product = await platform.product(stock=5)
    user = platform.user()
    order_id = (await platform.place(user, (product, 2))).json()["id"]
    await platform.settled(user, order_id)
    status_url = f"{platform.orders_url}/orders/{order_id}/status"

    async def put(status: str) -> Any:
        return await platform.http.put(
            status_url, json={"status": status}, headers=platform.admin.headers
        )

    skipped = await put("DELIVERED")
    assert skipped.status_code == 409
    assert skipped.headers["content-type"] == "application/problem+json"
    assert skipped.json()["allowed"] == ["SHIPPED", "CANCELLED"]

    assert (await put("SHIPPED")).status_code == 200

    async def committed() -> bool:
        return await platform.stock(product) == {"onHand": 3, "reserved": 0, "available": 3}

    await eventually(committed, what="inventory to commit the shipped reservation")
    assert (await put("DELIVERED")).status_code == 200
    late = await put("CANCELLED")
    assert late.status_code == 409
    assert late.json()["allowed"] == []


async def test_cancelling_a_confirmed_order_releases_its_stock(platform: Platform) -> None:
    product = await platform.product(stock=4)
    user = platform.user()
    order_id = (await platform.place(user, (product, 3))).json()["id"]
    await platform.settled(user, order_id)
    assert (await platform.stock(product))["reserved"] == 3

    async with platform.live(user) as live:
        cancel = await platform.http.post(
            f"{platform.orders_url}/orders/{order_id}/cancel",
            json={"reason": "found it cheaper"},
            headers=user.headers,
        )
        assert cancel.status_code == 200, cancel.text
        await live.update(order_id, "CANCELLED")

    async def released() -> bool:
        return await platform.stock(product) == {"onHand": 4, "reserved": 0, "available": 4}

    await eventually(released, what="inventory to release the reservation")


async def test_a_cancel_that_overtakes_the_reservation_reserves_nothing(
    platform: Platform,
) -> None:
    """order.created and order.cancelled travel on different topics: inventory may hear of the
    cancel first, and must then not reserve for the order when order.created arrives."""
    product = await platform.product(stock=5)
    user = platform.user()
    await platform.runtime("inventory").kill("consumer")
    try:
        order_id = (await platform.place(user, (product, 2))).json()["id"]
        cancel = await platform.http.post(
            f"{platform.orders_url}/orders/{order_id}/cancel", headers=user.headers
        )
        assert cancel.status_code == 200, cancel.text
    finally:
        platform.runtime("inventory").start("consumer")

    async def heard_both() -> bool:
        # The cancel is claimed. order.created is claimed on the checked path (the tombstone
        # was there first); a reservation it made at once was released by the cancel.
        done = rows(
            platform,
            "SELECT count(*) AS n,"
            " (SELECT status FROM inventory.reservations WHERE order_id = %s) AS status"
            " FROM inventory.processed_events p"
            " JOIN orders.outbox o ON o.event_id = p.event_id WHERE o.message_key = %s",
            order_id,
            order_id,
        )
        return bool(done[0]["n"] == 2 or (done[0]["n"] == 1 and done[0]["status"] == "RELEASED"))

    await eventually(heard_both, what="inventory to consume order.created and order.cancelled")
    assert await platform.stock(product) == {"onHand": 5, "reserved": 0, "available": 5}
    order = await platform.order(user, order_id)
    assert [e["status"] for e in order["timeline"]] == ["CREATED", "CANCELLED"]


async def test_an_idempotent_retry_returns_the_same_order(platform: Platform) -> None:
    product = await platform.product(stock=5)
    user = platform.user()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await platform.place(user, (product, 2), headers=key)
    assert first.status_code == 201
    order_id = first.json()["id"]
    await platform.settled(user, order_id)

    retry = await platform.place(user, (product, 2), headers=key)
    assert retry.status_code == 200
    assert retry.json()["id"] == order_id
    assert retry.json()["status"] == "CONFIRMED"
    assert await platform.stock(product) == {"onHand": 5, "reserved": 2, "available": 3}
    listed = await platform.http.get(f"{platform.orders_url}/orders", headers=user.headers)
    assert [o["id"] for o in listed.json()["items"]] == [order_id]
