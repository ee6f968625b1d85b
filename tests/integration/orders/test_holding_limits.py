"""Stock hoarding: one user's open orders are bounded in count and in units per product, also
under concurrent creates; cancelled orders free the room; other users are not affected."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg.rows import DictRow, dict_row

from services.orders import repository as repo
from services.orders.domain import HoldingLimits
from services.orders.settings import Settings
from tests.integration.orders.support import ADDRESS, CatalogueStub, create_while_held
from tests.support import Bearer, bearer

pytestmark = pytest.mark.integration
Db = psycopg.Connection[DictRow]


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    return {
        "MAX_OPEN_ORDERS_PER_USER": 3,
        "MAX_OPEN_UNITS_PER_PRODUCT": 10,
        "RUN_CONSUMERS": False,
    }


def body(*lines: tuple[str, int]) -> dict[str, Any]:
    return {
        "items": [{"productId": pid, "quantity": qty} for pid, qty in lines],
        "shippingAddress": ADDRESS,
    }


async def test_units_of_one_product_are_capped_per_user(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer, other_user: Bearer
) -> None:
    lamp = catalogue.add("Lamp", "5.00")
    first = await client.post("/orders", json=body((lamp, 8)), headers=user.headers)
    assert first.status_code == 201, first.text

    refused = await client.post("/orders", json=body((lamp, 3)), headers=user.headers)
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["type"].endswith("/holding-limit")
    assert lamp in problem["detail"]
    assert problem["products"] == [lamp]

    assert (await client.post("/orders", json=body((lamp, 2)), headers=user.headers)).is_success
    other = await client.post("/orders", json=body((lamp, 10)), headers=other_user.headers)
    assert other.status_code == 201, "another user's holdings are their own"


async def test_open_orders_are_capped_and_a_cancel_frees_room(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer
) -> None:
    pen = catalogue.add("Pen", "1.00")
    placed = [
        await client.post("/orders", json=body((pen, 1)), headers=user.headers) for _ in range(3)
    ]
    assert [r.status_code for r in placed] == [201, 201, 201]

    refused = await client.post("/orders", json=body((pen, 1)), headers=user.headers)
    assert refused.status_code == 409
    assert "3 open orders" in refused.json()["detail"]

    cancelled = await client.post(
        f"/orders/{placed[0].json()['id']}/cancel", json={}, headers=user.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    assert (await client.post("/orders", json=body((pen, 1)), headers=user.headers)).is_success


async def test_concurrent_creates_cannot_pass_the_limit_together(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer
) -> None:
    mug = catalogue.add("Mug", "3.00")
    answers = await asyncio.gather(
        *(client.post("/orders", json=body((mug, 4)), headers=user.headers) for _ in range(6))
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201, 201, 409, 409, 409, 409], [r.text for r in answers]


async def test_holdings_are_read_only_as_far_as_the_limits_in_force_need(
    client: httpx.AsyncClient, catalogue: CatalogueStub, settings: Settings
) -> None:
    owner = bearer(settings)
    vase = catalogue.add("Vase", "2.00")
    for quantity in (2, 3):
        placed = await client.post("/orders", json=body((vase, quantity)), headers=owner.headers)
        assert placed.status_code == 201, placed.text

    async def read(limits: HoldingLimits) -> repo.GroupHoldings:
        async with (
            await psycopg.AsyncConnection.connect(
                settings.db_conninfo, row_factory=dict_row, options="-c search_path=orders"
            ) as conn,
            conn.transaction(),
        ):
            return await repo.lock_and_read_holdings(conn, [owner.id], [vase], limits, ttl_hours=24)

    def held(read: repo.GroupHoldings) -> tuple[int, dict[str, int]] | None:
        found = read.by_user.get(owner.id)
        return None if found is None else (found.open_orders, found.units)

    assert held(await read(HoldingLimits(open_orders=3, units_per_product=10))) == (2, {vase: 5})
    assert held(await read(HoldingLimits(open_orders=3))) == (2, {})
    assert held(await read(HoldingLimits(units_per_product=10))) == (0, {vase: 5})


async def test_creates_placed_together_are_each_held_to_the_limits_of_those_before(
    orders_app: FastAPI,
    client: httpx.AsyncClient,
    catalogue: CatalogueStub,
    user: Bearer,
    other_user: Bearer,
    db: Db,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mug, lamp = catalogue.add("Mug", "3.00"), catalogue.add("Lamp", "5.00")
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}

    def create(
        who: Bearer, *lines: tuple[str, int], **headers: str
    ) -> Callable[[], Coroutine[Any, Any, httpx.Response]]:
        return lambda: client.post("/orders", json=body(*lines), headers={**who.headers, **headers})

    earlier = await create(user, (mug, 2), **key)()
    assert earlier.status_code == 201, earlier.text
    # The user holds 1 open order and 2 mugs; the first create below takes them to 2 orders.
    first, rest, sizes = await create_while_held(
        orders_app,
        monkeypatch,
        create(user, (lamp, 1)),
        [
            create(user, (mug, 2), **key),  # a retry: answered, neither checked nor counted
            create(user, (mug, 8)),  # 3 open orders, 10 mugs: admitted
            create(other_user, (mug, 10)),  # another user's holdings are their own
            create(user, (mug, 1)),  # a fourth open order: refused
            create(user, (mug, 2), **key),  # the key again: a group of its own, answered
        ],
    )

    assert first.status_code == 201, first.text
    retried, eight, others, fourth, again = rest
    assert [eight.status_code, others.status_code] == [201, 201], [eight.text, others.text]
    assert fourth.status_code == 409, fourth.text
    assert "3 open orders" in fourth.json()["detail"]
    for replay in (retried, again):
        assert (replay.status_code, replay.json()["id"]) == (200, earlier.json()["id"])
    assert sizes == [1, 2], "the group placed the two it admitted; the last placed nothing"
    held = db.execute(
        """
        SELECT count(DISTINCT o.id) AS orders, sum(l.quantity) FILTER (WHERE l.product_id = %s)
            AS mugs
        FROM orders o JOIN order_lines l ON l.order_id = o.id
        WHERE o.user_id = %s
        """,
        (mug, user.id),
    ).fetchone()
    assert held == {"orders": 3, "mugs": 10}
