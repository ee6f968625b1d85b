"""The orders HTTP API on real Postgres, Redis and Kafka (the catalogue is a stub)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg.rows import DictRow

from devstack.testing import KafkaServer, PostgresServer, RedisServer
from services.kit.events import parse_envelope
from services.kit.order_events import ORDER_CANCELLED, ORDER_CREATED, OrderCreated
from services.orders import repository as repo
from services.orders.main import create_app
from services.orders.settings import Settings
from tests.integration.orders.conftest import orders_settings
from tests.integration.orders.support import (
    ADDRESS,
    CatalogueStub,
    LiveListener,
)
from tests.support import Bearer, bearer, eventually

pytestmark = pytest.mark.integration
Db = psycopg.Connection[DictRow]


def order_body(*items: tuple[str, int], **extra: Any) -> dict[str, Any]:
    return {
        "items": [{"productId": pid, "quantity": qty} for pid, qty in items],
        "shippingAddress": ADDRESS,
        **extra,
    }


async def place(
    client: httpx.AsyncClient, user: Bearer, *items: tuple[str, int], **headers: str
) -> dict[str, Any]:
    response = await client.post(
        "/orders", json=order_body(*items), headers={**user.headers, **headers}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# --- create ------------------------------------------------------------------------------


async def test_client_prices_and_other_unknown_fields_are_refused_by_name(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer
) -> None:
    mug = catalogue.add("Mug", "12.50")
    body = order_body((mug, 2), total="0.01", status="DELIVERED")
    body["items"][0]["unitPrice"] = "0.01"

    response = await client.post("/orders/create", json=body, headers=user.headers)

    assert response.status_code == 422, response.text
    fields = sorted(e["field"] for e in response.json()["errors"])
    assert fields == ["items.0.unitPrice", "status", "total"]


async def test_create_prices_from_the_catalogue(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer, db: Db
) -> None:
    mug = catalogue.add("Mug", "12.50")
    tea = catalogue.add("Tea", "3.99")
    body = order_body((mug, 2), (tea, 3))

    response = await client.post("/orders/create", json=body, headers=user.headers)

    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["location"] == f"/orders/{order['id']}"
    assert order["status"] == "CREATED"
    assert order["version"] == 1
    assert order["userId"] == user.id
    assert order["currency"] == "EUR"
    assert order["total"] == "36.97"
    assert [
        (i["productId"], i["quantity"], i["unitPrice"], i["lineTotal"]) for i in order["items"]
    ] == [
        (mug, 2, "12.50", "25.00"),
        (tea, 3, "3.99", "11.97"),
    ]
    assert order["items"][0]["sku"] == catalogue.products[mug]["sku"]
    assert order["items"][0]["name"] == "Mug"
    assert order["shippingAddress"] == {**ADDRESS, "line2": None}
    [entry] = order["timeline"]
    assert entry["status"] == "CREATED"
    assert entry["version"] == 1
    assert entry["actor"] == f"user:{user.id}"
    assert entry["eventId"]
    # An event's id is time-ordered (kit/ids.py); an order's stays random: people know an order
    # by its id's first characters.
    assert uuid.UUID(entry["eventId"]).version == 7
    assert uuid.UUID(order["id"]).version == 4

    stored = db.execute(
        "SELECT total, status, created_at, updated_at FROM orders WHERE id = %s", (order["id"],)
    ).fetchone()
    assert stored is not None
    assert (stored["total"], stored["status"]) == (Decimal("36.97"), "CREATED")
    assert stored["updated_at"] == stored["created_at"]
    outbox = db.execute(
        "SELECT event_id, topic, message_key, payload FROM outbox WHERE message_key = %s",
        (order["id"],),
    ).fetchall()
    assert len(outbox) == 1
    assert outbox[0]["topic"] == ORDER_CREATED
    assert str(outbox[0]["event_id"]) == entry["eventId"]
    created = parse_envelope(bytes(outbox[0]["payload"]), OrderCreated)
    assert created.data.total == Decimal("36.97")
    assert created.data.version == 1
    # The event, the stored order, its first timeline entry and the answer share one time.
    assert created.data.created_at == stored["created_at"]
    assert datetime.fromisoformat(order["createdAt"]) == stored["created_at"]
    assert datetime.fromisoformat(entry["at"]) == stored["created_at"]
    assert [line.unit_price for line in created.data.items] == [Decimal("12.50"), Decimal("3.99")]


async def test_the_relay_publishes_the_created_event(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer, db: Db
) -> None:
    order = await place(client, user, (catalogue.add("Pen", "1.00"), 1))

    async def published() -> bool:
        row = db.execute(
            "SELECT published_at FROM outbox WHERE message_key = %s", (order["id"],)
        ).fetchone()
        return row is not None and row["published_at"] is not None

    await eventually(published, what="the relay to publish order.created")


async def test_repeated_products_are_merged(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer
) -> None:
    pen = catalogue.add("Pen", "1.10")
    order = await place(client, user, (pen, 2), (pen, 5))
    assert [(i["productId"], i["quantity"], i["lineTotal"]) for i in order["items"]] == [
        (pen, 7, "7.70")
    ]


async def test_validation_errors_are_problem_details(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer
) -> None:
    pen = catalogue.add("Pen", "1.00")
    body = order_body((pen, 0))
    body["shippingAddress"] = {**ADDRESS, "country": "XX"}
    response = await client.post("/orders", json=body, headers=user.headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"items.0.quantity", "shippingAddress.country"}


async def test_unknown_and_inactive_products_are_named(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer
) -> None:
    pen = catalogue.add("Pen", "1.00")
    retired = catalogue.add("Old pen", "1.00", active=False)
    unknown = str(uuid.uuid4())
    response = await client.post(
        "/orders", json=order_body((pen, 1), (retired, 1), (unknown, 1)), headers=user.headers
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["unknownProducts"] == [unknown]
    assert problem["inactiveProducts"] == [retired]
    assert unknown in problem["detail"]


async def test_one_currency_per_order(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer
) -> None:
    eur = catalogue.add("Pen", "1.00", "EUR")
    usd = catalogue.add("Pen", "1.00", "USD")
    response = await client.post(
        "/orders", json=order_body((eur, 1), (usd, 1)), headers=user.headers
    )
    assert response.status_code == 422
    assert response.json()["currencies"] == ["EUR", "USD"]


async def test_a_failing_catalogue_gives_503(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer
) -> None:
    pen = catalogue.add("Pen", "1.00")
    catalogue.failing = True
    try:
        response = await client.post("/orders", json=order_body((pen, 1)), headers=user.headers)
    finally:
        catalogue.failing = False
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/inventory-unavailable")


async def test_an_unreachable_catalogue_gives_503(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    kafka_server: KafkaServer,
    orders_database: str,
    settings: Settings,
) -> None:
    from devstack.ports import free_port

    nowhere = orders_settings(
        postgres_server,
        redis_server,
        kafka_server,
        orders_database,
        f"http://127.0.0.1:{free_port()}",
        RUN_RELAY=False,
        RUN_CONSUMERS=False,
    )
    app = create_app(nowhere)
    user = bearer(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
            response = await client.post(
                "/orders", json=order_body((str(uuid.uuid4()), 1)), headers=user.headers
            )
    assert response.status_code == 503
    assert response.json()["status"] == 503


async def test_a_token_is_required(client: httpx.AsyncClient) -> None:
    response = await client.post("/orders", json=order_body((str(uuid.uuid4()), 1)))
    assert response.status_code == 401
    assert (await client.get("/orders")).status_code == 401


# --- idempotency -------------------------------------------------------------------------


async def test_an_idempotent_retry_returns_the_first_order(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer, db: Db
) -> None:
    pen = catalogue.add("Pen", "2.00")
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    first = await client.post("/orders", json=order_body((pen, 1)), headers={**user.headers, **key})
    lookups = catalogue.lookups
    # The same request again, on the other create path.
    retry = await client.post(
        "/orders/create", json=order_body((pen, 1)), headers={**user.headers, **key}
    )

    assert first.status_code == 201
    assert retry.status_code == 200
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["id"] == first.json()["id"]
    assert catalogue.lookups == lookups, "a replay must not price again"
    count = db.execute("SELECT count(*) AS n FROM orders WHERE user_id = %s", (user.id,)).fetchone()
    assert count == {"n": 1}


async def test_a_keys_first_request_reads_nothing_before_placing_and_a_retry_reads_it(
    client: httpx.AsyncClient,
    catalogue: CatalogueStub,
    user: Bearer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[str] = []
    find = repo.find_idempotency_key

    async def counted_find(conn: Any, **where: Any) -> repo.IdempotencyRecord | None:
        reads.append(where["key"])
        return await find(conn, **where)

    monkeypatch.setattr(repo, "find_idempotency_key", counted_find)
    pen = catalogue.add("Pen", "2.00")
    key = f"key-{uuid.uuid4()}"
    first = await place(client, user, (pen, 1), **{"Idempotency-Key": key})
    assert reads == [], "the placing statement claims the key itself"
    retry = await client.post(
        "/orders", json=order_body((pen, 1)), headers={**user.headers, "Idempotency-Key": key}
    )
    assert (retry.status_code, retry.json()["id"]) == (200, first["id"])
    assert reads == [key]


async def test_a_retry_is_answered_while_the_order_could_not_be_priced_now(
    orders_app: FastAPI, client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer
) -> None:
    pen = catalogue.add("Pen", "2.00")
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    first = await place(client, user, (pen, 1), **key)
    orders_app.state.orders.catalogue.drop()  # the prices must be asked for again
    catalogue.failing = True
    try:
        retry = await client.post(
            "/orders", json=order_body((pen, 1)), headers={**user.headers, **key}
        )
        fresh = await client.post("/orders", json=order_body((pen, 1)), headers=user.headers)
    finally:
        catalogue.failing = False
    assert (retry.status_code, retry.json()["id"]) == (200, first["id"])
    assert retry.headers["idempotent-replayed"] == "true"
    assert fresh.status_code == 503, "without a key the same request cannot be priced"


async def test_the_same_key_with_another_request_is_refused(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer
) -> None:
    pen = catalogue.add("Pen", "2.00")
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    await place(client, user, (pen, 1), **key)
    response = await client.post(
        "/orders", json=order_body((pen, 2)), headers={**user.headers, **key}
    )
    assert response.status_code == 422
    assert response.json()["type"].endswith("/idempotency-key-reused")


async def test_keys_belong_to_their_user(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer, other_user: Bearer
) -> None:
    pen = catalogue.add("Pen", "2.00")
    key = {"Idempotency-Key": "shared-key"}
    mine = await place(client, user, (pen, 1), **key)
    theirs = await place(client, other_user, (pen, 1), **key)
    assert mine["id"] != theirs["id"]
    assert theirs["userId"] == other_user.id


async def test_a_key_past_its_time_to_live_places_a_new_order(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer, db: Db
) -> None:
    pen = catalogue.add("Pen", "2.00")
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    first = await place(client, user, (pen, 1), **key)
    db.execute(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE user_id = %s",
        (user.id,),
    )
    # Another request with the old key: no longer a replay, nor a reused key.
    response = await client.post(
        "/orders", json=order_body((pen, 3)), headers={**user.headers, **key}
    )
    assert response.status_code == 201
    second = response.json()
    assert second["id"] != first["id"]
    record = db.execute(
        "SELECT order_id, created_at > now() - interval '1 minute' AS fresh"
        " FROM idempotency_keys WHERE user_id = %s",
        (user.id,),
    ).fetchone()
    assert record == {"order_id": uuid.UUID(second["id"]), "fresh": True}
    outbox = db.execute(
        "SELECT count(*) AS n FROM outbox WHERE message_key = %s", (second["id"],)
    ).fetchone()
    assert outbox == {"n": 1}


async def test_concurrent_retries_with_one_key_create_one_order(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer, db: Db
) -> None:
    pen = catalogue.add("Pen", "2.00")
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    responses = await asyncio.gather(
        *(
            client.post("/orders", json=order_body((pen, 1)), headers={**user.headers, **key})
            for _ in range(8)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    count = db.execute("SELECT count(*) AS n FROM orders WHERE user_id = %s", (user.id,)).fetchone()
    assert count == {"n": 1}
    outbox = db.execute(
        "SELECT count(*) AS n FROM outbox WHERE message_key = %s", (responses[0].json()["id"],)
    ).fetchone()
    assert outbox == {"n": 1}


# --- visibility --------------------------------------------------------------------------


async def test_another_users_order_is_404(
    client: httpx.AsyncClient,
    catalogue: CatalogueStub,
    user: Bearer,
    other_user: Bearer,
    admin: Bearer,
) -> None:
    order = await place(client, user, (catalogue.add("Pen", "1.00"), 1))
    path = f"/orders/{order['id']}"
    assert (await client.get(path, headers=user.headers)).status_code == 200
    assert (await client.get(path, headers=admin.headers)).status_code == 200
    for response in (
        await client.get(path, headers=other_user.headers),
        await client.get(f"{path}/timeline", headers=other_user.headers),
        await client.post(f"{path}/cancel", headers=other_user.headers),
        await client.get(f"/orders/{uuid.uuid4()}", headers=user.headers),
    ):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get(path, headers=user.headers)).json()["status"] == "CREATED"


# --- status changes ----------------------------------------------------------------------


async def test_owner_cancels_a_created_order(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer, db: Db, settings: Settings
) -> None:
    order = await place(client, user, (catalogue.add("Pen", "1.00"), 1))
    async with LiveListener(settings.redis_url) as live:
        response = await client.post(
            f"/orders/{order['id']}/cancel",
            json={"reason": "changed my mind"},
            headers=user.headers,
        )
        assert response.status_code == 200, response.text
        cancelled = response.json()
        await eventually(
            lambda: _async(live.for_order(order["id"])), within=5, what="the live push"
        )

    assert cancelled["status"] == "CANCELLED"
    assert cancelled["version"] == 2
    entry = cancelled["timeline"][-1]
    assert (entry["status"], entry["version"], entry["reason"]) == (
        "CANCELLED",
        2,
        "changed my mind",
    )
    assert entry["actor"] == f"user:{user.id}"
    [push] = live.for_order(order["id"])
    assert push["event"] == "order.updated"
    assert push["room"] == [f"user:{user.id}", "admins"]
    assert (push["status"], push["version"], push["userId"]) == ("CANCELLED", 2, user.id)
    event = db.execute(
        "SELECT event_id FROM outbox WHERE message_key = %s AND topic = %s",
        (order["id"], ORDER_CANCELLED),
    ).fetchone()
    assert event is not None
    assert str(event["event_id"]) == entry["eventId"]

    again = await client.post(f"/orders/{order['id']}/cancel", headers=user.headers)
    assert again.status_code == 409
    assert again.json()["allowed"] == []
    assert again.json()["current"] == "CANCELLED"


async def test_admin_status_changes_follow_the_machine(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer, admin: Bearer
) -> None:
    order = await place(client, user, (catalogue.add("Pen", "1.00"), 1))
    path = f"/orders/{order['id']}/status"

    early = await client.put(path, json={"status": "SHIPPED"}, headers=admin.headers)
    assert early.status_code == 409
    assert early.headers["content-type"] == "application/problem+json"
    assert early.json()["allowed"] == ["CANCELLED"]
    assert early.json()["requested"] == "SHIPPED"

    by_hand = await client.put(path, json={"status": "CONFIRMED"}, headers=admin.headers)
    assert by_hand.status_code == 422

    not_admin = await client.put(path, json={"status": "CANCELLED"}, headers=user.headers)
    assert not_admin.status_code == 403

    stale = await client.put(
        path, json={"status": "CANCELLED", "expectedVersion": 5}, headers=admin.headers
    )
    assert stale.status_code == 409
    assert stale.json()["currentVersion"] == 1

    done = await client.put(
        path,
        json={"status": "CANCELLED", "reason": "fraud check", "expectedVersion": 1},
        headers=admin.headers,
    )
    assert done.status_code == 200
    assert done.json()["timeline"][-1]["actor"] == f"admin:{admin.id}"
    assert done.json()["timeline"][-1]["reason"] == "fraud check"


async def test_timeline_since_a_version(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer, admin: Bearer
) -> None:
    order = await place(client, user, (catalogue.add("Pen", "1.00"), 1))
    await client.post(f"/orders/{order['id']}/cancel", headers=user.headers)
    path = f"/orders/{order['id']}/timeline"

    full = await client.get(path, headers=user.headers)
    assert [e["version"] for e in full.json()] == [1, 2]
    missed = await client.get(path, params={"sinceVersion": 1}, headers=user.headers)
    assert [(e["version"], e["status"]) for e in missed.json()] == [(2, "CANCELLED")]
    assert (await client.get(path, params={"sinceVersion": 2}, headers=admin.headers)).json() == []
    assert (
        await client.get(path, params={"sinceVersion": -1}, headers=user.headers)
    ).status_code == 422


# --- listing -----------------------------------------------------------------------------


async def test_listing_pages_through_own_orders_newest_first(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer, other_user: Bearer
) -> None:
    pen = catalogue.add("Pen", "1.00")
    placed = [(await place(client, user, (pen, n)))["id"] for n in range(1, 8)]
    await place(client, other_user, (pen, 1))

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/orders", params=params, headers=user.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(placed))
    assert pages == 3
    assert all(item["userId"] == user.id for item in page["items"])


async def test_listing_filters(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer, admin: Bearer
) -> None:
    teapot = catalogue.add("Blue teapot", "30.00")
    kettle = catalogue.add("Kettle", "20.00")
    first = await place(client, user, (teapot, 1))
    second = await place(client, user, (kettle, 1))
    await client.post(f"/orders/{second['id']}/cancel", headers=user.headers)

    async def ids(headers: dict[str, str], **params: Any) -> list[str]:
        response = await client.get("/orders", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    mine = user.headers
    assert await ids(mine, status="CANCELLED") == [second["id"]]
    assert await ids(mine, status=["CREATED", "CANCELLED"]) == [second["id"], first["id"]]
    assert await ids(mine, status="created,cancelled") == [second["id"], first["id"]]
    assert await ids(mine, q="teapot") == [first["id"]]
    assert await ids(mine, q=catalogue.products[kettle]["sku"].lower()) == [second["id"]]
    assert await ids(mine, q=first["id"][:8]) == [first["id"]]
    assert await ids(mine, q="100%_") == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert await ids(mine, **{"from": future}) == []
    assert await ids(mine, **{"from": past, "to": future}) == [second["id"], first["id"]]
    assert await ids(mine, to=past) == []

    # Admins see everyone's orders and may narrow them to one user.
    assert await ids(admin.headers, userId=user.id) == [second["id"], first["id"]]
    everyone = await ids(admin.headers, limit=100)
    assert first["id"] in everyone

    bad = await client.get("/orders", params={"status": "LOST"}, headers=mine)
    assert bad.status_code == 422
    assert (await client.get("/orders", params={"limit": 101}, headers=mine)).status_code == 422
    bad_cursor = await client.get("/orders", params={"cursor": "nope"}, headers=mine)
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["type"].endswith("/invalid-cursor")
    others = await client.get("/orders", params={"userId": admin.id}, headers=mine)
    assert others.status_code == 403


# --- probes ------------------------------------------------------------------------------


async def test_ready_and_metrics(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer
) -> None:
    await place(client, user, (catalogue.add("Pen", "1.00"), 1))
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok", "kafka": "ok", "jobs": "ok"}
    metrics = (await client.get("/metrics")).text
    assert "orders_created_total" in metrics
    assert 'orders_transitions_total{actor="owner",status="CREATED"}' in metrics


async def _async(value: Any) -> Any:
    return value
