"""Helpers for the orders and pipeline integration tests: servers on free ports, tokens, waits.

`serve` runs an ASGI app under uvicorn inside the test's event loop, so the app's background
tasks (relay, consumers) are reachable from the test and can be killed and restarted.
`CatalogueStub` plays the inventory service's batch lookup for the orders-only tests; the
pipeline tests run the real inventory service instead.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse
from redis.asyncio import Redis

from devstack.ports import HOST, free_port
from services.kit.groups import GroupedCalls
from services.kit.live import REDIS_CHANNEL
from services.orders import repository as repo
from tests.support import eventually

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "1 Analytical Way",
    "city": "London",
    "postalCode": "N1 9GU",
    "country": "GB",
}
T = TypeVar("T")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves the signals to the test runner (several run at once)."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def serve(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Run `app` (with its lifespan) under uvicorn on a free port; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app, host=HOST, port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("the server stopped while starting")
        await asyncio.sleep(0.02)
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class CatalogueStub:
    """The inventory service's `GET /inventory/products?ids=` as the orders service sees it."""

    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    url: str = ""
    failing: bool = False
    lookups: int = 0

    def add(self, name: str, price: str, currency: str = "EUR", *, active: bool = True) -> str:
        product_id = str(uuid.uuid4())
        self.products[product_id] = {
            "id": product_id,
            "sku": f"SKU-{name.upper().replace(' ', '-')}-{product_id[:4]}",
            "name": name,
            "description": "",
            "price": str(Decimal(price)),
            "currency": currency,
            "active": active,
        }
        return product_id

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/inventory/products")
        async def products(ids: str = Query(...)) -> JSONResponse:
            self.lookups += 1
            if self.failing:
                return JSONResponse({"detail": "down"}, status_code=500)
            wanted = ids.split(",")
            found = [self.products[i] for i in wanted if i in self.products]
            return JSONResponse({"items": found, "nextCursor": None})

        return app


class LiveListener:
    """Collects the Socket.IO emits the services publish through Redis (what the gateway gets)."""

    def __init__(self, redis_url: str) -> None:
        self.redis: Redis = Redis.from_url(redis_url)
        self.updates: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LiveListener:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(REDIS_CHANNEL)

        async def listen() -> None:
            async for message in pubsub.listen():
                payload = orjson.loads(message["data"])
                if payload.get("method") == "emit":
                    self.updates.append(
                        {"event": payload["event"], "room": payload["room"], **payload["data"][0]}
                    )

        self._task = asyncio.create_task(listen())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.redis.aclose()

    def for_order(self, order_id: str) -> list[dict[str, Any]]:
        return [u for u in self.updates if u.get("orderId") == order_id]


async def create_while_held(
    orders_app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
    first: Callable[[], Coroutine[Any, Any, httpx.Response]],
    rest: list[Callable[[], Coroutine[Any, Any, httpx.Response]]],
) -> tuple[httpx.Response, list[httpx.Response], list[int]]:
    """Creates placed in groups (`OrderService.creates`, kit/groups.py): `first` placed alone,
    its statement held until every one of `rest` waits behind it; then the answers and the size
    of each group `repository.place_orders` placed, in order."""
    sizes: list[int] = []
    release = asyncio.Event()
    place_orders = repo.place_orders

    async def held(conn: Any, placements: Sequence[repo.Placement], **options: Any) -> Any:
        sizes.append(len(placements))
        if len(sizes) == 1:
            await release.wait()
        return await place_orders(conn, placements, **options)

    monkeypatch.setattr(repo, "place_orders", held)
    creates: GroupedCalls[Any, Any] = orders_app.state.orders.creates
    head = asyncio.create_task(first())

    async def first_held() -> bool:
        return sizes == [1]

    await eventually(first_held, within=10, what="the first create's statement")
    tail = [asyncio.create_task(create()) for create in rest]

    async def all_waiting() -> bool:
        return creates.waiting == len(rest)

    await eventually(all_waiting, within=10, what="the other creates waiting")
    release.set()
    return await head, list(await asyncio.gather(*tail)), sizes
