"""Reading prices from the inventory catalogue's batch lookup, with and without a short cache."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from services.orders.catalogue import Catalogue
from services.orders.errors import InventoryUnavailable

PRODUCTS = {
    "p1": {
        "id": "p1",
        "sku": "S1",
        "name": "One",
        "price": "12.50",
        "currency": "eur",
        "active": True,
    },
    "p2": {
        "id": "p2",
        "sku": "S2",
        "name": "Two",
        "price": "3",
        "currency": "EUR",
        "active": False,
    },
}


class Inventory:
    """Answers `GET /inventory/products?ids=` like the inventory service, counting lookups."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []
        self.status = 200
        self.body: Any = None

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/inventory/products"
        ids = request.url.params["ids"].split(",")
        self.asked.append(ids)
        if self.body is not None:
            return httpx.Response(self.status, json=self.body)
        found = [PRODUCTS[i] for i in ids if i in PRODUCTS]
        return httpx.Response(self.status, json={"items": found, "nextCursor": None})


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def catalogue(inventory: Inventory, **kwargs: Any) -> Catalogue:
    http = httpx.AsyncClient(transport=httpx.MockTransport(inventory.handle), base_url="http://inv")
    return Catalogue(http, **kwargs)


async def test_a_lookup_returns_the_known_products() -> None:
    inventory = Inventory()
    found = await catalogue(inventory).products(["p1", "p2", "nope"])
    assert set(found) == {"p1", "p2"}
    assert found["p1"].price == Decimal("12.50")
    assert found["p1"].currency == "EUR"
    assert found["p2"].active is False
    assert inventory.asked == [["p1", "p2", "nope"]]


async def test_without_a_cache_every_lookup_asks_inventory() -> None:
    inventory = Inventory()
    lookups = catalogue(inventory)
    await lookups.products(["p1"])
    await lookups.products(["p1"])
    assert inventory.asked == [["p1"], ["p1"]]


async def test_with_a_cache_only_missing_or_stale_products_are_asked_for() -> None:
    inventory, clock = Inventory(), Clock()
    lookups = catalogue(inventory, cache_seconds=2, clock=clock)
    await lookups.products(["p1", "nope"])
    clock.now += 1
    found = await lookups.products(["p1", "p2", "nope"])
    assert set(found) == {"p1", "p2"}
    clock.now += 1.5
    await lookups.products(["p1", "p2"])
    assert inventory.asked == [["p1", "nope"], ["p2", "nope"], ["p1"]]


async def test_nothing_to_look_up_asks_nothing() -> None:
    inventory = Inventory()
    assert await catalogue(inventory).products([]) == {}
    assert inventory.asked == []


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, None),
        (422, {"detail": "bad"}),
        (200, {"no": "items"}),
        (200, {"items": [{"id": "p1"}]}),
    ],
)
async def test_an_unusable_answer_is_inventory_unavailable(status: int, body: Any) -> None:
    inventory = Inventory()
    inventory.status, inventory.body = status, body
    with pytest.raises(InventoryUnavailable) as caught:
        await catalogue(inventory).products(["p1"])
    assert caught.value.status == 503


async def test_an_unreachable_inventory_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(refuse), base_url="http://inv")
    with pytest.raises(InventoryUnavailable):
        await Catalogue(http).products(["p1"])
