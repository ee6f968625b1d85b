"""A Redis that never answers holds up neither a request nor the consumer's in-order loop.

Live pushes go through Redis. They run after commit on the kit's after-commit runner, and the
emitter only queues them for its own round trips, so with Redis hanging, an order is still
created at once and an event still applied at once; the pushes time out on their way to Redis
and are counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from devstack.testing import KafkaServer, PostgresServer, RedisServer
from services.kit.consumer import EventShell
from services.kit.metrics import LIVE_PUSHES
from services.kit.order_events import ORDER_CONFIRMED
from services.orders.main import create_app
from services.orders.service import OrderService
from tests.integration.orders.conftest import orders_settings
from tests.integration.orders.support import ADDRESS, CatalogueStub
from tests.integration.orders.test_orders_events import confirmed
from tests.support import bearer

pytestmark = pytest.mark.integration
PUSH_TIMEOUT = 3.0


@pytest.fixture
async def silent_redis() -> AsyncIterator[str]:
    """A TCP server that accepts connections and never answers: a hung Redis."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        for writer in held:
            writer.close()
        server.close()


def not_published() -> float:
    value: float = LIVE_PUSHES.labels("failed")._value.get()
    return value


async def test_a_hung_redis_delays_neither_creates_nor_consumed_events(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    kafka_server: KafkaServer,
    orders_database: str,
    catalogue: CatalogueStub,
    silent_redis: str,
) -> None:
    settings = orders_settings(
        postgres_server,
        redis_server,
        kafka_server,
        orders_database,
        catalogue.url,
        REDIS_URL=silent_redis,
        AFTER_COMMIT_TIMEOUT_SECONDS=PUSH_TIMEOUT,
        RUN_CONSUMERS=False,
    )
    app = create_app(settings)
    user = bearer(settings)
    before = not_published()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
            body: dict[str, Any] = {
                "items": [{"productId": catalogue.add("Ink", "2.00"), "quantity": 1}],
                "shippingAddress": ADDRESS,
            }
            started = time.monotonic()
            response = await client.post("/orders", json=body, headers=user.headers)
            created_in = time.monotonic() - started
            assert response.status_code == 201, response.text

            shell: EventShell[OrderService] = app.state.event_shell
            answer = confirmed(response.json())
            started = time.monotonic()
            applied = await shell.handle(ORDER_CONFIRMED, answer.to_bytes())
            applied_in = time.monotonic() - started
            assert applied is not None
            assert applied.outcome == "CONFIRMED"

            order = (await client.get(f"/orders/{answer.subject}", headers=user.headers)).json()
            assert order["status"] == "CONFIRMED"

            async with asyncio.timeout(4 * PUSH_TIMEOUT):
                await shell.after_commit.drained()
                await app.state.orders.live.emitter.drained()
    assert created_in < PUSH_TIMEOUT / 2, f"the create waited {created_in:.2f}s on Redis"
    assert applied_in < PUSH_TIMEOUT / 2, f"the consumed event waited {applied_in:.2f}s on Redis"
    assert not_published() >= before + 2, "both pushes timed out on their way to Redis, counted"
