"""Creates placed in groups (OrderService.creates, kit/groups.py) through the real statement.

The first create's statement is held until the others wait behind it, so they are placed
together as the next group: each is placed once, as it would be alone, a key repeated in the
group goes to a group of its own and is answered with its first order, and a value the database
refuses fails its own create only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg.rows import DictRow

from tests.integration.orders.support import CatalogueStub, create_while_held
from tests.integration.orders.test_orders_api import order_body
from tests.support import Bearer

Db = psycopg.Connection[DictRow]


async def test_creates_that_wait_are_placed_together_each_once(
    orders_app: FastAPI,
    client: httpx.AsyncClient,
    catalogue: CatalogueStub,
    user: Bearer,
    other_user: Bearer,
    db: Db,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pen, ink = catalogue.add("Pen", "2.00"), catalogue.add("Ink", "3.50")
    key = f"key-{uuid.uuid4()}"

    def create(
        who: Bearer, *items: tuple[str, int], **headers: str
    ) -> Callable[[], Coroutine[Any, Any, httpx.Response]]:
        return lambda: client.post(
            "/orders", json=order_body(*items), headers={**who.headers, **headers}
        )

    first, rest, sizes = await create_while_held(
        orders_app,
        monkeypatch,
        create(user, (pen, 1)),
        [
            create(user, (pen, 2), (ink, 1), **{"Idempotency-Key": key}),
            create(other_user, (ink, 3)),
            create(user, (pen, 2), (ink, 1), **{"Idempotency-Key": key}),  # the same request
            create(other_user, (pen, 1), **{"Idempotency-Key": key}),  # another user's key
        ],
    )

    assert sizes == [1, 3, 1], "the repeated key waits for a group of its own"
    assert first.status_code == 201
    keyed, other, retried, others_keyed = rest
    assert [keyed.status_code, other.status_code, others_keyed.status_code] == [201] * 3
    assert (retried.status_code, retried.json()["id"]) == (200, keyed.json()["id"])
    assert retried.headers["idempotent-replayed"] == "true"

    placed = [first.json(), keyed.json(), other.json(), others_keyed.json()]
    assert len({order["id"] for order in placed}) == 4
    assert [order["total"] for order in placed] == ["2.00", "7.50", "10.50", "2.00"]
    for order in placed:
        order_id = uuid.UUID(order["id"])
        stored = db.execute(
            """
            SELECT (SELECT count(*) FROM orders WHERE id = %(id)s) AS orders,
                   (SELECT count(*) FROM order_lines WHERE order_id = %(id)s) AS lines,
                   (SELECT count(*) FROM order_timeline WHERE order_id = %(id)s) AS entries,
                   (SELECT count(*) FROM outbox WHERE message_key = %(key)s) AS events
            """,
            {"id": order_id, "key": order["id"]},
        ).fetchone()
        assert stored == {
            "orders": 1,
            "lines": len(order["items"]),
            "entries": 1,
            "events": 1,
        }
        assert order["items"][0]["unitPrice"] in ("2.00", "3.50")
        assert order["timeline"][0]["status"] == "CREATED"
    record = db.execute(
        "SELECT order_id FROM idempotency_keys WHERE user_id = %s AND key = %s", (user.id, key)
    ).fetchone()
    assert record == {"order_id": uuid.UUID(keyed.json()["id"])}


async def test_a_value_the_database_refuses_fails_its_own_create_only(
    orders_app: FastAPI,
    client: httpx.AsyncClient,
    catalogue: CatalogueStub,
    user: Bearer,
    db: Db,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pen = catalogue.add("Pen", "2.00")
    broken = catalogue.add("Broken", "1.00")
    catalogue.products[broken]["name"] = "Bro\x00ken"  # text PostgreSQL cannot store

    def create(product: str) -> Callable[[], Coroutine[Any, Any, httpx.Response]]:
        return lambda: client.post("/orders", json=order_body((product, 1)), headers=user.headers)

    first, rest, sizes = await create_while_held(
        orders_app, monkeypatch, create(pen), [create(pen), create(broken), create(pen)]
    )

    assert sizes == [1, 3, 1, 1, 1], "the refused group is placed again one by one"
    assert [first.status_code] + [r.status_code for r in rest] == [201, 201, 422, 201]
    assert rest[1].json()["type"].endswith("/invalid-input")
    for response in (first, rest[0], rest[2]):
        stored = db.execute(
            "SELECT count(*) AS n FROM orders WHERE id = %s", (uuid.UUID(response.json()["id"]),)
        ).fetchone()
        assert stored == {"n": 1}
