"""Stock hoarding: one user's open orders are bounded in count and in units per product, also
under concurrent creates; cancelled orders free the room; other users are not affected."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from services.orders import repository as repo
from services.orders.domain import HoldingLimits
from services.orders.settings import Settings
from tests.integration.orders.support import ADDRESS, CatalogueStub
from tests.support import Bearer, bearer

pytestmark = pytest.mark.integration


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

    async def read(limits: HoldingLimits) -> repo.Holdings:
        async with (
            await psycopg.AsyncConnection.connect(
                settings.db_conninfo, row_factory=dict_row, options="-c search_path=orders"
            ) as conn,
            conn.transaction(),
        ):
            return await repo.lock_and_read_holdings(conn, owner.id, [vase], limits)

    both = await read(HoldingLimits(open_orders=3, units_per_product=10))
    assert (both.open_orders, both.units) == (2, {vase: 5})
    count_only = await read(HoldingLimits(open_orders=3))
    assert (count_only.open_orders, count_only.units) == (2, {})
    units_only = await read(HoldingLimits(units_per_product=10))
    assert (units_only.open_orders, units_only.units) == (0, {vase: 5})
    unlimited = await read(HoldingLimits())
    assert (unlimited.open_orders, unlimited.units) == (0, {})
