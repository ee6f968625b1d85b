"""The real platform behind the web apps, for the browser tests.

One platform per module: auth, orders, inventory, notifications (with its push worker) and
analytics under uvicorn on free ports, on one fresh database (each service in its own schema,
as deployed), with consumer groups of their own on the session's Kafka, a RabbitMQ virtual host
of their own, and the gateway in front of them (its Socket.IO server fed through the session's
Redis). Both web apps' production builds are served as `make up` serves them (devstack/web.py),
with a config.json naming this gateway.

The user app's Socket.IO traffic goes through `SocketLink`, a TCP relay the tests can cut and
restore, which is how a browser's connection drops for real; its REST calls go straight to the
gateway.

The push worker sends to `PushProvider`, which refuses every message (400, a permanent failure)
until it is told to accept: each order event's push is dead-lettered, for the dashboard's
dead-letter browser to replay or discard. Analytics reads the queues of this virtual host from
the session's RabbitMQ management API; its PROMETHEUS_URL points at a port nothing listens on,
so its reports answer from the projection and say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import aiormq
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from devstack import web
from devstack.ports import HOST, free_port
from devstack.testing import KafkaServer, PostgresServer, RabbitMQServer, RedisServer
from services.analytics.handlers import EVENT_HANDLERS as ANALYTICS_HANDLERS
from services.analytics.main import create_app as create_analytics_app
from services.analytics.settings import Settings as AnalyticsSettings
from services.auth.main import create_app as create_auth_app
from services.auth.settings import Settings as AuthSettings
from services.gateway.main import create_app as create_gateway_app
from services.gateway.settings import Settings as GatewaySettings
from services.inventory.handlers import EVENT_HANDLERS as INVENTORY_HANDLERS
from services.inventory.main import create_app as create_inventory_app
from services.inventory.settings import Settings as InventorySettings
from services.kit.rabbit import Queue, declare_queues
from services.notifications.domain import Channel
from services.notifications.handlers import EVENT_HANDLERS as NOTIFICATION_HANDLERS
from services.notifications.main import create_app as create_notifications_app
from services.notifications.settings import Settings as NotificationSettings
from services.notifications.settings import WorkerSettings
from services.notifications.topology import WORK_QUEUES
from services.notifications.worker import create_worker_app
from services.orders.handlers import EVENT_HANDLERS as ORDERS_HANDLERS
from services.orders.main import create_app as create_orders_app
from services.orders.settings import Settings as OrdersSettings
from tests.integration.fixtures import fresh_consumer_group, rabbitmq_vhost, running
from tests.integration.orders.support import serve
from tests.signing import token_env
from tests.support import eventually

ADMIN_EMAIL = "admin@example.com"


@dataclass
class SocketLink:
    """A TCP relay in front of the gateway that can drop every connection and refuse new ones."""

    target_port: int
    port: int = field(default_factory=free_port)
    connected: bool = True
    _server: asyncio.Server | None = None
    _pipes: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, HOST, self.port)

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        self.connected = False
        for writer in list(self._pipes):
            writer.transport.abort()
        self._pipes.clear()

    def restore(self) -> None:
        self.connected = True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.connected:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._pipes.update((writer, up_writer))
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        self._pipes.discard(writer)
        writer.transport.abort()


@dataclass
class PushProvider:
    """The push provider the worker sends to: it refuses every message until `accept()`."""

    refusing: bool = True

    def accept(self) -> None:
        self.refusing = False

    def app(self) -> Starlette:
        async def push(request: Request) -> JSONResponse:
            if self.refusing:
                return JSONResponse({"error": "device not registered"}, status_code=400)
            return JSONResponse({"status": "accepted"}, status_code=202)

        return Starlette(routes=[Route("/push", push, methods=["POST"])])


@dataclass
class WebPlatform:
    gateway_url: str
    user_app_url: str
    admin_url: str
    admin_email: str
    admin_password: str
    socket_link: SocketLink
    push_provider: PushProvider
    control_url: str
    http: httpx.AsyncClient
    admin_token: str = ""

    async def product(self, name: str, stock: int, price: str = "12.50") -> dict[str, Any]:
        response = await self.http.post(
            f"{self.gateway_url}/inventory/products",
            json={
                "sku": f"WEB-{uuid.uuid4().hex[:10]}",
                "name": name,
                "description": "A product the browser tests order.",
                "price": price,
                "currency": "EUR",
                "initialStock": stock,
            },
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )
        assert response.status_code == 201, response.text
        product: dict[str, Any] = response.json()
        return product


def controls(link: SocketLink, provider: PushProvider) -> Starlette:
    """A tiny HTTP endpoint the browser script calls: POST /cut and /restore (the user app's
    socket link), POST /push-provider/accept (the push provider takes messages from then on)."""

    async def cut(request: Request) -> PlainTextResponse:
        link.cut()
        return PlainTextResponse("cut\n")

    async def restore(request: Request) -> PlainTextResponse:
        link.restore()
        return PlainTextResponse("restored\n")

    async def accept(request: Request) -> PlainTextResponse:
        provider.accept()
        return PlainTextResponse("accepting\n")

    return Starlette(
        routes=[
            Route("/cut", cut, methods=["POST"]),
            Route("/restore", restore, methods=["POST"]),
            Route("/push-provider/accept", accept, methods=["POST"]),
        ]
    )


@pytest.fixture(scope="module")
def vhost_url(rabbitmq_server: RabbitMQServer) -> Iterator[str]:
    with rabbitmq_vhost(rabbitmq_server, "web") as (_, url):
        yield url


@pytest.fixture(scope="module")
async def web_platform(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    kafka_server: KafkaServer,
    rabbitmq_server: RabbitMQServer,
    vhost_url: str,
) -> AsyncIterator[WebPlatform]:
    await asyncio.to_thread(web.ensure_built)
    database = postgres_server.create_database("web")
    run = uuid.uuid4().hex[:8]
    admin_password = secrets.token_urlsafe(12)
    shared: dict[str, Any] = {
        **postgres_server.env(database),
        "DB_POOL_MIN": 1,
        "DB_POOL_MAX": 5,
        "APP_ENV": "test",
        **token_env(),
        "REDIS_URL": redis_server.url,
        "KAFKA_BROKER": kafka_server.bootstrap,
        "RABBITMQ_URL": vhost_url,
    }
    user_port, admin_port = free_port(), free_port()
    origins = [f"http://{HOST}:{user_port}", f"http://{HOST}:{admin_port}"]
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=15))
        auth_url = await stack.enter_async_context(
            serve(
                create_auth_app(
                    AuthSettings(
                        **shared,
                        ADMIN_EMAIL=ADMIN_EMAIL,
                        ADMIN_PASSWORD=admin_password,
                        # Cheap hashes: the tests sign in often on a busy machine.
                        ARGON2_TIME_COST=1,
                        ARGON2_MEMORY_COST_KIB=8192,
                        ARGON2_PARALLELISM=1,
                    )
                )
            )
        )
        inventory_url = await stack.enter_async_context(
            serve(
                create_inventory_app(
                    InventorySettings(
                        **shared,
                        SEED_DEMO_CATALOGUE=False,
                        KAFKA_CONSUMER_GROUP=fresh_consumer_group(
                            kafka_server, f"web-inventory-{run}", INVENTORY_HANDLERS
                        ),
                    )
                )
            )
        )
        orders_url = await stack.enter_async_context(
            serve(
                create_orders_app(
                    OrdersSettings(
                        **shared,
                        INVENTORY_SERVICE_URL=inventory_url,
                        INVENTORY_TIMEOUT_SECONDS=15,
                        KAFKA_CONSUMER_GROUP=fresh_consumer_group(
                            kafka_server, f"web-orders-{run}", ORDERS_HANDLERS
                        ),
                    )
                )
            )
        )
        notifications_url = await stack.enter_async_context(
            serve(
                create_notifications_app(
                    NotificationSettings(
                        **shared,
                        KAFKA_CONSUMER_GROUP=fresh_consumer_group(
                            kafka_server, f"web-notifications-{run}", NOTIFICATION_HANDLERS
                        ),
                    )
                )
            )
        )
        provider = PushProvider()
        provider_url = await stack.enter_async_context(serve(provider.app()))
        await eventually(
            lambda: _queue_exists(vhost_url, WORK_QUEUES[Channel.PUSH]),
            what="the notifications service to declare its queues",
        )
        await stack.enter_async_context(
            running(
                create_worker_app(
                    Channel.PUSH,
                    WorkerSettings(**shared, PUSH_PROVIDER_URL=f"{provider_url}/push"),
                )
            )
        )
        analytics_url = await stack.enter_async_context(
            serve(
                create_analytics_app(
                    AnalyticsSettings(
                        **shared,
                        RABBITMQ_MANAGEMENT_URL=rabbitmq_server.management_url,
                        PROMETHEUS_URL=f"http://{HOST}:{free_port()}",
                        PROMETHEUS_TIMEOUT_SECONDS=1,
                        KAFKA_CONSUMER_GROUP=fresh_consumer_group(
                            kafka_server, f"web-analytics-{run}", ANALYTICS_HANDLERS
                        ),
                    )
                )
            )
        )
        gateway_port = free_port()
        gateway_url = await stack.enter_async_context(
            serve(
                create_gateway_app(
                    GatewaySettings(
                        **shared,
                        AUTH_SERVICE_URL=auth_url,
                        ORDER_SERVICE_URL=orders_url,
                        INVENTORY_SERVICE_URL=inventory_url,
                        NOTIFICATION_SERVICE_URL=notifications_url,
                        ANALYTICS_SERVICE_URL=analytics_url,
                        CORS_ORIGINS=",".join(origins),
                    )
                ),
                port=gateway_port,
            )
        )
        link = SocketLink(target_port=gateway_port)
        await link.start()
        stack.push_async_callback(link.stop)
        control_url = await stack.enter_async_context(serve(controls(link, provider)))

        user_config = web.runtime_config(gateway_url) | {"socketUrl": link.url}
        user_site = web.serve_in_background(web.app("user-app").dist, user_port, user_config)
        stack.callback(user_site.stop)
        admin_site = web.serve_in_background(
            web.app("admin-dashboard").dist, admin_port, web.runtime_config(gateway_url)
        )
        stack.callback(admin_site.stop)

        platform = WebPlatform(
            gateway_url=gateway_url,
            user_app_url=user_site.url,
            admin_url=admin_site.url,
            admin_email=ADMIN_EMAIL,
            admin_password=admin_password,
            socket_link=link,
            push_provider=provider,
            control_url=control_url,
            http=http,
        )
        login = await http.post(
            f"{gateway_url}/auth/login", json={"email": ADMIN_EMAIL, "password": admin_password}
        )
        assert login.status_code == 200, login.text
        platform.admin_token = login.json()["accessToken"]
        await _warm_up(platform)
        yield platform


async def _queue_exists(url: str, name: str) -> bool:
    try:
        await declare_queues(url, [Queue(name)], passive=True)
    except aiormq.ChannelNotFoundEntity:
        return False
    return True


async def _warm_up(platform: WebPlatform) -> None:
    """One order through the pipeline, so every consumer group has joined before a browser waits."""
    product = await platform.product(f"Warm-up {uuid.uuid4().hex[:6]}", stock=1)
    headers = {"Authorization": f"Bearer {platform.admin_token}"}
    placed = await platform.http.post(
        f"{platform.gateway_url}/orders",
        json={
            "items": [{"productId": product["id"], "quantity": 1}],
            "shippingAddress": {
                "name": "Warm Up",
                "line1": "1 Test Street",
                "city": "Berlin",
                "postalCode": "10115",
                "country": "DE",
            },
        },
        headers=headers,
    )
    assert placed.status_code == 201, placed.text
    url = f"{platform.gateway_url}/orders/{placed.json()['id']}"

    async def settled() -> bool:
        return bool((await platform.http.get(url, headers=headers)).json()["status"] != "CREATED")

    await eventually(settled, within=90, what="the warm-up order to settle")
