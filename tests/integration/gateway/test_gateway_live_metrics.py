"""The gateway's Socket.IO connection gauge: an accepted connection counts until it closes, a
refused one never counts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import socketio
from prometheus_client import REGISTRY

from devstack.testing import RedisServer
from services.gateway.main import create_app
from services.gateway.settings import Settings
from services.kit.tokens import Principal
from tests.integration.gateway.support import UvicornThread, closed_port
from tests.signing import sign, token_env

pytestmark = pytest.mark.integration


def settings(redis_url: str) -> Settings:
    return Settings(
        APP_ENV="test",
        **token_env(),
        REDIS_URL=redis_url,
        ORDER_SERVICE_URL=f"http://127.0.0.1:{closed_port()}",
        UPSTREAM_TIMEOUT_SECONDS=2,
    )


@pytest.fixture(scope="module")
def gateway(redis_server: RedisServer) -> Iterator[UvicornThread]:
    with UvicornThread(create_app(settings(redis_server.url))) as server:
        yield server


def connections() -> float:
    return REGISTRY.get_sample_value("gateway_socketio_connections") or 0.0


async def settled(expected: float, within: float = 10) -> None:
    """The server handles a disconnect after the client has gone: wait for it."""
    deadline = time.monotonic() + within
    while connections() != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"connections stayed {connections()}, expected {expected}")
        await asyncio.sleep(0.05)


async def test_connections_are_counted_while_open(
    gateway: UvicornThread, redis_server: RedisServer
) -> None:
    before = connections()
    principal = Principal(user_id="metered", email="metered@example.com", role="USER")
    token = sign(settings(redis_server.url), principal)
    clients = [socketio.AsyncClient() for _ in range(2)]
    for client in clients:
        await client.connect(
            gateway.url, auth={"token": token}, transports=["websocket"], wait_timeout=5
        )
    await settled(before + 2)

    refused = socketio.AsyncClient()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(
            gateway.url, auth={"token": "not-a-token"}, transports=["websocket"], wait_timeout=5
        )
    await refused.disconnect()
    assert connections() == before + 2

    for client in clients:
        await client.disconnect()
    await settled(before)
