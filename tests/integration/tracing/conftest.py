"""The platform with tracing on, into memory: every hop of an order, in-process.

One module-scoped platform: the gateway, orders and inventory under uvicorn, the notifications
app and the push worker (sending to the provider sink), on one fresh database, consumer groups
of their own on the session's Kafka and a RabbitMQ virtual host of their own. Tracing is turned
on before the apps are built (`tracing.trace_with`): each service gets a tracer provider of its
own (its `service.name`), all exporting to one in-memory exporter, and is turned off again when
the module ends.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from devstack.testing import (
    KafkaServer,
    PostgresServer,
    ProviderSinkServer,
    RabbitMQServer,
    RedisServer,
)
from services.gateway.main import create_app as create_gateway_app
from services.gateway.settings import Settings as GatewaySettings
from services.inventory.handlers import EVENT_HANDLERS as INVENTORY_HANDLERS
from services.inventory.main import create_app as create_inventory_app
from services.inventory.settings import Settings as InventorySettings
from services.kit import tracing
from services.kit.settings import ServiceSettings
from services.notifications.domain import Channel
from services.notifications.handlers import EVENT_HANDLERS as NOTIFICATIONS_HANDLERS
from services.notifications.main import create_app as create_notifications_app
from services.notifications.settings import Settings as NotificationsSettings
from services.notifications.settings import WorkerSettings
from services.notifications.worker import create_worker_app
from services.orders.handlers import EVENT_HANDLERS as ORDERS_HANDLERS
from services.orders.main import create_app as create_orders_app
from services.orders.settings import Settings as OrdersSettings
from tests.integration.fixtures import fresh_consumer_group, rabbitmq_vhost, running
from tests.integration.orders.support import ADDRESS, serve
from tests.signing import token_env
from tests.support import Bearer, bearer, eventually

CLOSED = "http://127.0.0.1:9"
"""An upstream the gateway never reaches in these tests (auth, analytics)."""


def in_memory(exporter: InMemorySpanExporter) -> None:
    """Trace every service configured from now on into `exporter`, each under its own name."""

    def provider(service: str) -> TracerProvider:
        made = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
        made.add_span_processor(SimpleSpanProcessor(exporter))
        return made

    tracing.trace_with(provider)


def service_of(span: ReadableSpan) -> str:
    return str(span.resource.attributes[SERVICE_NAME])


@dataclass
class TracedPlatform:
    gateway_url: str
    inventory_url: str
    http: httpx.AsyncClient
    spans: InMemorySpanExporter
    token_settings: ServiceSettings
    admin: Bearer
    sink: ProviderSinkServer
    conninfo: str
    """The platform's database."""

    def user(self) -> Bearer:
        return bearer(self.token_settings)

    async def product(self, stock: int = 100) -> str:
        suffix = uuid.uuid4().hex[:10]
        response = await self.http.post(
            f"{self.inventory_url}/inventory/products",
            json={
                "sku": f"TRACE-{suffix}",
                "name": f"Traced item {suffix}",
                "description": "made by a test",
                "price": "12.50",
                "currency": "EUR",
                "initialStock": stock,
            },
            headers=self.admin.headers,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def place(self, user: Bearer, product_id: str, request_id: str) -> str:
        """Place an order through the gateway's proxy; returns its id."""
        response = await self.http.post(
            f"{self.gateway_url}/orders",
            json={"items": [{"productId": product_id, "quantity": 1}], "shippingAddress": ADDRESS},
            headers={**user.headers, "X-Request-ID": request_id},
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def trace(self, request_id: str) -> list[ReadableSpan]:
        """Every finished span of the trace the gateway began for the request `request_id`."""
        finished = self.spans.get_finished_spans()
        roots = [
            s
            for s in finished
            if service_of(s) == "gateway"
            and s.attributes is not None
            and s.attributes.get("realtimeorder.request_id") == request_id
        ]
        if not roots:
            return []
        trace_id = roots[0].context.trace_id
        return [s for s in finished if s.context.trace_id == trace_id]

    async def notified(self, request_id: str, within: float = 60.0) -> list[ReadableSpan]:
        """The request's trace once orders pushed the confirmation to Socket.IO and the push
        worker sent its notification, and the creation's push too unless notifications
        suppressed that one as stale (it consumes the two topics independently, so
        order.confirmed may come first)."""

        async def complete() -> list[ReadableSpan] | None:
            spans = self.trace(request_id)
            if not _pushed(spans, "order.confirmed"):
                return None
            # Orders consumes the confirmation on its own, maybe after notifications did.
            confirmed = _named(spans, "orders", "order.confirmed process")
            if not any(
                c.name == "after-commit push_order" for s in confirmed for c in _children(spans, s)
            ):
                return None
            created = _named(spans, "notifications", "order.created process")
            if not created:
                return None
            if any(_outcome(s) == "notified" for s in created) and not _pushed(
                spans, "order.created"
            ):
                return None
            return spans

        return await eventually(complete, within=within, what="the order's pushes in its trace")


def _named(spans: list[ReadableSpan], service: str, name: str) -> list[ReadableSpan]:
    return [s for s in spans if service_of(s) == service and s.name == name]


def _outcome(span: ReadableSpan) -> object:
    return span.attributes.get("realtimeorder.outcome") if span.attributes else None


def _children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def _pushed(spans: list[ReadableSpan], topic: str) -> bool:
    """Whether the push worker sent the notification of `topic` in these spans."""
    return any(
        service_of(sent) == "push-worker" and _outcome(sent) == "sent"
        for consumed in _named(spans, "notifications", f"{topic} process")
        for published in _children(spans, consumed)
        for sent in _children(spans, published)
    )


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    in_memory(exporter)
    yield exporter
    tracing.trace_with(None)


@pytest.fixture(scope="module")
def vhost_url(rabbitmq_server: RabbitMQServer) -> Iterator[str]:
    with rabbitmq_vhost(rabbitmq_server, "tracing") as (_, url):
        yield url


@pytest.fixture(scope="module")
async def platform(
    spans: InMemorySpanExporter,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    kafka_server: KafkaServer,
    provider_sink_server: ProviderSinkServer,
    vhost_url: str,
) -> AsyncIterator[TracedPlatform]:
    database = postgres_server.create_database("tracing")
    run = uuid.uuid4().hex[:8]
    shared: dict[str, Any] = {
        **postgres_server.env(database),
        "DB_POOL_MIN": 1,
        "DB_POOL_MAX": 5,
        "APP_ENV": "test",
        **token_env(),
        "ACCESS_TOKEN_TTL_SECONDS": 3600,
        "REDIS_URL": redis_server.url,
        "KAFKA_BROKER": kafka_server.bootstrap,
    }

    def group(service: str, handlers: Any) -> str:
        return fresh_consumer_group(kafka_server, f"{service}-{run}", handlers)

    token_settings = ServiceSettings(**shared)
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=15))
        inventory_url = await stack.enter_async_context(
            serve(
                create_inventory_app(
                    InventorySettings(
                        **shared,
                        SEED_DEMO_CATALOGUE=False,
                        KAFKA_CONSUMER_GROUP=group("inventory", INVENTORY_HANDLERS),
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
                        KAFKA_CONSUMER_GROUP=group("orders", ORDERS_HANDLERS),
                    )
                )
            )
        )
        await stack.enter_async_context(
            running(
                create_notifications_app(
                    NotificationsSettings(
                        **shared,
                        RABBITMQ_URL=vhost_url,
                        KAFKA_CONSUMER_GROUP=group("notifications", NOTIFICATIONS_HANDLERS),
                    )
                )
            )
        )
        worker: dict[str, Any] = {
            **postgres_server.env(database),
            "APP_ENV": "test",
            "RABBITMQ_URL": vhost_url,
            "PUSH_PROVIDER_URL": f"{provider_sink_server.url}/push",
            "PROVIDER_TIMEOUT_SECONDS": 5,
        }
        worker_settings = WorkerSettings(**worker)
        await stack.enter_async_context(running(create_worker_app(Channel.PUSH, worker_settings)))
        gateway_url = await stack.enter_async_context(
            serve(
                create_gateway_app(
                    GatewaySettings(
                        APP_ENV="test",
                        **token_env(),
                        REDIS_URL=redis_server.url,
                        AUTH_SERVICE_URL=CLOSED,
                        ORDER_SERVICE_URL=orders_url,
                        INVENTORY_SERVICE_URL=inventory_url,
                        NOTIFICATION_SERVICE_URL=CLOSED,
                        ANALYTICS_SERVICE_URL=CLOSED,
                        UPSTREAM_TIMEOUT_SECONDS=15,
                    )
                )
            )
        )
        platform = TracedPlatform(
            gateway_url=gateway_url,
            inventory_url=inventory_url,
            http=http,
            spans=spans,
            token_settings=token_settings,
            admin=bearer(token_settings, "ADMIN"),
            sink=provider_sink_server,
            conninfo=postgres_server.conninfo(database),
        )
        # Warm up: every consumer has joined its group and the worker is consuming once one
        # order went all the way to its confirmation's push.
        product = await platform.product()
        request_id = uuid.uuid4().hex
        await platform.place(platform.user(), product, request_id)
        await platform.notified(request_id, within=90)
        yield platform
