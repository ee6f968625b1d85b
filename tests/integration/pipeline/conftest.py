"""The order pipeline for real: the inventory and orders apps, the gateway's Socket.IO server.

Each test module starts its own platform: both services under uvicorn on free ports, on one
fresh database (each in its own schema, as deployed), with consumer groups of their own on the
session's Kafka broker, and the Socket.IO server fed through the session's Redis. Services are
reached over HTTP with signed tokens, exactly as the gateway would forward them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import socketio
from fastapi import FastAPI

from devstack.testing import KafkaServer, PostgresServer, RedisServer
from services.gateway.live import create_socket_server, listen_for_pushes, stop_listening
from services.gateway.service import UpstreamClient
from services.inventory.handlers import EVENT_HANDLERS as INVENTORY_HANDLERS
from services.inventory.main import create_app as create_inventory_app
from services.inventory.settings import Settings as InventorySettings
from services.kit import http1
from services.kit.cache import create_redis
from services.kit.live import ORDER_UPDATED, OrderUpdate, create_emitter, push_order_update
from services.kit.runtime import Runtime
from services.kit.settings import ServiceSettings
from services.kit.tokens import Revocations
from services.orders.handlers import EVENT_HANDLERS as ORDERS_HANDLERS
from services.orders.main import create_app as create_orders_app
from services.orders.metrics import CATALOGUE_LOOKUPS
from services.orders.settings import Settings as OrdersSettings
from tests.integration.fixtures import fresh_consumer_group
from tests.integration.orders.support import (
    ADDRESS,
    serve,
)
from tests.signing import token_env
from tests.support import Bearer, bearer, eventually

FINAL = frozenset({"CONFIRMED", "FAILED", "CANCELLED", "DELIVERED"})


@dataclass
class LiveClient:
    """A real Socket.IO client signed in as one user, recording every `order.updated`."""

    sio: socketio.AsyncClient
    updates: list[dict[str, Any]] = field(default_factory=list)

    def for_order(self, order_id: str) -> list[dict[str, Any]]:
        return [u for u in self.updates if u["orderId"] == order_id]

    async def update(self, order_id: str, status: str, within: float = 20.0) -> dict[str, Any]:
        async def seen() -> dict[str, Any] | None:
            return next((u for u in self.for_order(order_id) if u["status"] == status), None)

        return await eventually(seen, within=within, what=f"a {status} push for {order_id}")


@dataclass
class Platform:
    orders_url: str
    inventory_url: str
    socket_url: str
    orders_app: FastAPI
    inventory_app: FastAPI
    http: httpx.AsyncClient
    token_settings: ServiceSettings
    admin: Bearer
    db_conninfo: str

    def runtime(self, service: str) -> Runtime:
        """The background jobs of `orders` or `inventory`."""
        app = {"orders": self.orders_app, "inventory": self.inventory_app}[service]
        runtime: Runtime = app.state.runtime
        return runtime

    def catalogue_requests(self) -> float:
        """The catalogue lookups orders sent to inventory so far (the rest it answered from its
        copy in memory)."""
        return float(CATALOGUE_LOOKUPS.labels("inventory")._value.get())

    def user(self) -> Bearer:
        return bearer(self.token_settings)

    async def product(self, stock: int, price: str = "10.00", currency: str = "EUR") -> str:
        suffix = uuid.uuid4().hex[:10]
        response = await self.http.post(
            f"{self.inventory_url}/inventory/products",
            json={
                "sku": f"PIPE-{suffix}",
                "name": f"Pipeline item {suffix}",
                "description": "made by a test",
                "price": price,
                "currency": currency,
                "initialStock": stock,
            },
            headers=self.admin.headers,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def stock(self, product_id: str) -> dict[str, int]:
        response = await self.http.get(f"{self.inventory_url}/inventory/stock/{product_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        return {k: body[k] for k in ("onHand", "reserved", "available")}

    async def place(
        self, user: Bearer, *items: tuple[str, int], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.http.post(
            f"{self.orders_url}/orders",
            json={
                "items": [{"productId": pid, "quantity": qty} for pid, qty in items],
                "shippingAddress": ADDRESS,
            },
            headers={**user.headers, **(headers or {})},
        )

    async def order(self, user: Bearer, order_id: str) -> dict[str, Any]:
        response = await self.http.get(f"{self.orders_url}/orders/{order_id}", headers=user.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def all_settled(
        self, user: Bearer, order_ids: list[str], within: float = 60.0
    ) -> dict[str, dict[str, Any]]:
        """Every order once final, by id (polled one at a time to keep the load light)."""
        done: dict[str, dict[str, Any]] = {}

        async def check() -> bool:
            for order_id in [i for i in order_ids if i not in done]:
                order = await self.order(user, order_id)
                if order["status"] in FINAL:
                    done[order_id] = order
            return len(done) == len(order_ids)

        await eventually(check, within=within, what=f"{len(order_ids)} orders to settle")
        return done

    async def settled(
        self, user: Bearer, order_id: str, statuses: frozenset[str] = FINAL, within: float = 30.0
    ) -> dict[str, Any]:
        """The order once it reaches one of `statuses`."""

        async def check() -> dict[str, Any] | None:
            order = await self.order(user, order_id)
            return order if order["status"] in statuses else None

        return await eventually(check, within=within, what=f"order {order_id} in {statuses}")

    @asynccontextmanager
    async def live(self, user: Bearer) -> AsyncIterator[LiveClient]:
        client = LiveClient(socketio.AsyncClient(reconnection=False))

        async def on_update(data: dict[str, Any]) -> None:
            client.updates.append(data)

        client.sio.on(ORDER_UPDATED, on_update)
        await client.sio.connect(
            self.socket_url, auth={"token": user.token}, transports=["websocket"], wait_timeout=5
        )
        try:
            yield client
        finally:
            await client.sio.disconnect()


def _database_env(postgres: PostgresServer, database: str) -> dict[str, Any]:
    return {**postgres.env(database), "DB_POOL_MIN": 2, "DB_POOL_MAX": 10}


@asynccontextmanager
async def start_platform(
    postgres: PostgresServer,
    redis: RedisServer,
    kafka: KafkaServer,
    **inventory_overrides: Any,
) -> AsyncIterator[Platform]:
    database = postgres.create_database("pipeline")
    run = uuid.uuid4().hex[:8]
    shared: dict[str, Any] = {
        **_database_env(postgres, database),
        "APP_ENV": "test",
        **token_env(),
        # The module's admin token must outlive a long module (repeated kill tests).
        "ACCESS_TOKEN_TTL_SECONDS": 24 * 3600,
        "REDIS_URL": redis.url,
        "KAFKA_BROKER": kafka.bootstrap,
    }
    inventory_settings = InventorySettings(
        **{
            **shared,
            "SEED_DEMO_CATALOGUE": False,
            "KAFKA_CONSUMER_GROUP": fresh_consumer_group(
                kafka, f"inventory-{run}", INVENTORY_HANDLERS
            ),
            **inventory_overrides,
        }
    )
    token_settings = ServiceSettings(**shared)
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        inventory_app = create_inventory_app(inventory_settings)
        inventory_url = await stack.enter_async_context(serve(inventory_app))
        orders_settings = OrdersSettings(
            **{
                **shared,
                "INVENTORY_SERVICE_URL": inventory_url,
                # Generous: a loaded test machine must not turn a slow lookup into a 503.
                "INVENTORY_TIMEOUT_SECONDS": 15,
                # So is the copy of the catalogue's confirmation window (2 x this): a loaded
                # machine must not make it ask inventory where a test expects memory.
                "CATALOGUE_CHECK_SECONDS": 5,
                # The tests of a module share this platform and place bursts of concurrent
                # creates that must all be taken; orders an earlier test left unsettled on a
                # loaded machine must not make the backlog refuse them (503
                # pipeline-backlogged). Its job still runs (the kill tests stop it); the
                # refusal has its own tests (tests/integration/orders/test_backlog_admission.py).
                "MAX_UNSETTLED_ORDERS": 100_000,
                "KAFKA_CONSUMER_GROUP": fresh_consumer_group(
                    kafka, f"orders-{run}", ORDERS_HANDLERS
                ),
            }
        )
        orders_app = create_orders_app(orders_settings)
        orders_url = await stack.enter_async_context(serve(orders_app))
        # The gateway's upstream client for order.sync calls to the orders service.
        gateway_upstream = UpstreamClient(http1.Client(), 10.0, token_settings.service_name)
        stack.callback(gateway_upstream.http.close)
        markers_redis = create_redis(token_settings)
        stack.push_async_callback(markers_redis.aclose)
        revocations = Revocations(markers_redis, cache_seconds=1.0, timeout_seconds=0.5)
        sockets, _ = create_socket_server(
            token_settings,
            orders_url=orders_url,
            upstream=lambda: gateway_upstream,
            revocations=lambda: revocations,
        )
        listen_for_pushes(sockets)
        stack.push_async_callback(stop_listening, sockets)
        socket_url = await stack.enter_async_context(serve(socketio.ASGIApp(sockets)))
        platform = Platform(
            orders_url=orders_url,
            inventory_url=inventory_url,
            socket_url=socket_url,
            orders_app=orders_app,
            inventory_app=inventory_app,
            http=http,
            token_settings=token_settings,
            admin=bearer(token_settings, "ADMIN"),
            db_conninfo=postgres.conninfo(database),
        )
        await _wait_until_consuming(platform)
        yield platform


async def _wait_until_consuming(platform: Platform) -> None:
    """Warm up: the Socket.IO server listens on Redis, and both consumer groups have joined."""
    emitter = create_emitter(platform.token_settings.redis_url)
    probe = OrderUpdate(
        order_id="warm-up", user_id="nobody", status="CREATED", version=1, time=datetime.now(UTC)
    )
    # The server's Redis subscription is set up in the background; a push before it is ready
    # reaches nobody, so keep pushing a probe until the admin receives one.
    async with platform.live(platform.admin) as admin:

        async def received() -> bool:
            await push_order_update(emitter, probe)
            await asyncio.sleep(0.1)
            return bool(admin.for_order("warm-up"))

        await eventually(received, within=20, what="the Socket.IO server to hear Redis")
    await emitter.close()

    product = await platform.product(stock=1)
    user = platform.user()
    response = await platform.place(user, (product, 1))
    assert response.status_code == 201, response.text
    await platform.settled(user, response.json()["id"], within=60)


@pytest.fixture(scope="module")
async def platform(
    postgres_server: PostgresServer, redis_server: RedisServer, kafka_server: KafkaServer
) -> AsyncIterator[Platform]:
    async with start_platform(postgres_server, redis_server, kafka_server) as platform:
        yield platform
