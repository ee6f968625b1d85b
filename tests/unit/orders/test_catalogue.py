"""Reading prices from the inventory catalogue's batch lookup, and the copy in memory that
inventory's catalogue signal keeps current (confirmed, changed, unconfirmed)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.orders.catalogue import Catalogue
from services.orders.errors import InventoryUnavailable
from tests.support import Clock

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
        self.while_asked: Callable[[], None] = lambda: None

    async def handle(self, request: web.Request) -> web.Response:
        assert request.path == "/inventory/products"
        ids = request.query["ids"].split(",")
        self.asked.append(ids)
        self.while_asked()
        if self.body is not None:
            return web.json_response(self.body, status=self.status)
        found = [PRODUCTS[i] for i in ids if i in PRODUCTS]
        return web.json_response({"items": found, "nextCursor": None}, status=self.status)


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    """Serves an `Inventory` on a loopback port; yields a function building a Catalogue on it."""
    servers: list[TestServer] = []
    sessions: list[aiohttp.ClientSession] = []

    async def start(inventory: Inventory, **kwargs: Any) -> Catalogue:
        app = web.Application()
        app.router.add_get("/inventory/products", inventory.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        session = aiohttp.ClientSession(base_url=str(server.make_url("/")))
        sessions.append(session)
        return Catalogue(session, **{"check_seconds": 0.5, **kwargs})

    yield start
    for session in sessions:
        await session.close()
    for server in servers:
        await server.close()


async def test_a_lookup_returns_the_known_products(serve: Any) -> None:
    inventory = Inventory()
    found = await (await serve(inventory)).products(["p1", "p2", "nope"])
    assert set(found) == {"p1", "p2"}
    assert found["p1"].price == Decimal("12.50")
    assert found["p1"].currency == "EUR"
    assert found["p2"].active is False
    assert inventory.asked == [["p1", "p2", "nope"]]


async def test_an_unconfirmed_copy_asks_inventory_every_time(serve: Any) -> None:
    inventory = Inventory()
    lookups = await serve(inventory)
    await lookups.products(["p1"])
    await lookups.products(["p1"])
    assert inventory.asked == [["p1"], ["p1"]]


async def test_a_confirmed_copy_asks_only_for_the_products_it_does_not_hold(serve: Any) -> None:
    inventory, clock = Inventory(), Clock()
    lookups = await serve(inventory, check_seconds=1, clock=clock)
    lookups.confirm(clock.now)
    await lookups.products(["p1", "nope"])
    found = await lookups.products(["p1", "p2", "nope"])
    assert set(found) == {"p1", "p2"}
    assert found["p1"].price == Decimal("12.50")
    await lookups.products(["p1", "p2"])
    assert inventory.asked == [["p1", "nope"], ["p2", "nope"]], "unknown ids are never kept"


async def test_a_change_drops_the_copy(serve: Any) -> None:
    inventory, clock = Inventory(), Clock()
    lookups = await serve(inventory, check_seconds=1, clock=clock)
    lookups.confirm(clock.now)
    await lookups.products(["p1"])
    lookups.changed()
    await lookups.products(["p1"])
    await lookups.products(["p1"])
    assert inventory.asked == [["p1"], ["p1"]]


async def test_the_copy_answers_only_within_twice_the_check_interval(serve: Any) -> None:
    inventory, clock = Inventory(), Clock()
    lookups = await serve(inventory, check_seconds=1, clock=clock)
    lookups.confirm(clock.now)
    await lookups.products(["p1"])
    clock.now += 1.9
    await lookups.products(["p1"])
    clock.now += 0.2  # no confirmation for 2.1 s: the watch may have missed a change
    await lookups.products(["p1"])
    lookups.confirm(clock.now)
    await lookups.products(["p1"])
    lookups.unconfirm()  # the watch ended (Redis lost)
    await lookups.products(["p1"])
    assert inventory.asked == [["p1"], ["p1"], ["p1"]]


async def test_a_lookup_answered_while_a_change_arrived_is_not_kept(serve: Any) -> None:
    inventory, clock = Inventory(), Clock()
    lookups = await serve(inventory, check_seconds=1, clock=clock)
    lookups.confirm(clock.now)
    inventory.while_asked = lookups.changed
    await lookups.products(["p1"])
    inventory.while_asked = lambda: None
    await lookups.products(["p1"])
    await lookups.products(["p1"])
    assert inventory.asked == [["p1"], ["p1"]]


async def test_nothing_to_look_up_asks_nothing(serve: Any) -> None:
    inventory = Inventory()
    assert await (await serve(inventory)).products([]) == {}
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
async def test_an_unusable_answer_is_inventory_unavailable(
    serve: Any, status: int, body: Any
) -> None:
    inventory = Inventory()
    inventory.status, inventory.body = status, body
    with pytest.raises(InventoryUnavailable) as caught:
        await (await serve(inventory)).products(["p1"])
    assert caught.value.status == 503


async def test_an_unreachable_inventory_is_unavailable() -> None:
    from devstack.ports import free_port

    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{free_port()}") as http:
        with pytest.raises(InventoryUnavailable):
            await Catalogue(http, check_seconds=0.5).products(["p1"])
