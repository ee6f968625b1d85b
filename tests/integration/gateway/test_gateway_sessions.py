"""A live socket lives no longer than its token: expiry and auth's revocations end it.

Auth's side (markers written, changes announced) is tested in tests/integration/auth; here the
announcements are made the way auth makes them, on the session's real Redis, and the gateway
runs under uvicorn with real Socket.IO clients.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import socketio
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from devstack.testing import RedisServer
from services.gateway.main import create_app
from services.kit.live import ORDER_UPDATED, SESSION_ENDED
from services.kit.live import push_order_update as push
from services.kit.tokens import (
    SESSION_EVENTS_CHANNEL,
    Principal,
    Role,
    family_marker_key,
    user_marker_key,
)
from tests.integration.gateway.support import UvicornThread, closed_port
from tests.integration.gateway.test_gateway_live import (
    gateway_settings,
    refusal,
    token_settings,
    until,
    update,
)
from tests.signing import sign

pytestmark = pytest.mark.integration


def token(
    user_id: str,
    role: Role = "USER",
    *,
    version: int = 0,
    family: str | None = None,
    expires_in: float | None = None,
) -> str:
    settings = token_settings()
    now = datetime.now(UTC)
    if expires_in is not None:
        now -= timedelta(seconds=settings.access_token_ttl_seconds - expires_in)
    principal = Principal(
        user_id=user_id,
        email=f"{user_id}@example.com",
        role=role,
        version=version,
        session_id=family,
    )
    return sign(settings, principal, now=now)


class Client:
    """A Socket.IO client recording pushes and the reason its session ended."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient()
        self.updates: list[str] = []
        self.ended: list[dict[str, Any]] = []
        self.sio.on(ORDER_UPDATED, lambda data: self.updates.append(data["orderId"]))
        self.sio.on(SESSION_ENDED, self.ended.append)


@asynccontextmanager
async def connected(url: str, auth_token: str) -> AsyncIterator[Client]:
    client = Client()
    await client.sio.connect(
        url, auth={"token": auth_token}, transports=["websocket"], wait_timeout=5
    )
    try:
        yield client
    finally:
        await client.sio.disconnect()


async def ended(client: Client, reason: str) -> None:
    await until(lambda: not client.sio.connected, "the disconnect")
    assert client.ended == [{"reason": reason}]


@pytest.fixture(scope="module")
def gateway(redis_server: RedisServer) -> Iterator[UvicornThread]:
    """The gateway, once its session-events job listens (an announcement before is missed)."""
    settings = gateway_settings(redis_server.url, f"http://127.0.0.1:{closed_port()}")
    with UvicornThread(create_app(settings)) as server:
        probe = SyncRedis.from_url(redis_server.url)
        deadline = time.monotonic() + 10
        while probe.pubsub_numsub(SESSION_EVENTS_CHANNEL)[0][1] < 1:
            assert time.monotonic() < deadline, "the gateway never subscribed"
            time.sleep(0.02)
        probe.close()
        yield server


@pytest.fixture
async def emitter(redis_server: RedisServer) -> AsyncIterator[socketio.AsyncRedisManager]:
    manager = socketio.AsyncRedisManager(
        redis_server.url, channel="realtimeorder-socketio", write_only=True
    )
    yield manager
    if manager.redis is not None:
        await manager.redis.aclose()


async def revoke_below(redis: Redis, user_id: str, version: int) -> None:
    """What auth does when an account's role or active flag changes."""
    await redis.set(user_marker_key(user_id), str(version), ex=960)
    await redis.publish(
        SESSION_EVENTS_CHANNEL, orjson.dumps({"userId": user_id, "minVersion": version})
    )


async def revoke_family(redis: Redis, user_id: str, family: str) -> None:
    """What auth does at a logout or when a refresh token is reused."""
    await redis.set(family_marker_key(family), "1", ex=960)
    await redis.publish(
        SESSION_EVENTS_CHANNEL, orjson.dumps({"userId": user_id, "familyId": family})
    )


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def test_a_socket_is_ended_when_its_token_expires(gateway: UvicornThread) -> None:
    async with connected(gateway.url, token(unique("user"), expires_in=1.5)) as client:
        await ended(client, "expired")


async def test_a_revocation_ends_that_users_sockets_and_no_one_elses(
    gateway: UvicornThread, redis: Redis, emitter: socketio.AsyncRedisManager
) -> None:
    alice, bob = unique("alice"), unique("bob")
    async with (
        connected(gateway.url, token(alice)) as on_phone,
        connected(gateway.url, token(alice)) as on_laptop,
        connected(gateway.url, token(bob)) as bobs,
    ):
        await revoke_below(redis, alice, 1)
        await ended(on_phone, "revoked")
        await ended(on_laptop, "revoked")
        for_bob = update(bob)
        await push(emitter, for_bob)
        await until(lambda: for_bob.order_id in bobs.updates, "bob's push")
        assert bobs.sio.connected
        assert bobs.ended == []


async def test_a_demoted_admin_stops_receiving_everyones_updates(
    gateway: UvicornThread, redis: Redis, emitter: socketio.AsyncRedisManager
) -> None:
    admin = unique("admin")
    async with connected(gateway.url, token(admin, "ADMIN")) as as_admin:
        someones = update(unique("someone"))
        await push(emitter, someones)
        await until(lambda: someones.order_id in as_admin.updates, "the admin's push")

        await revoke_below(redis, admin, 1)
        await ended(as_admin, "revoked")

    # Connecting again takes the token auth now signs: version 1, role USER.
    assert "revoked" in await refusal(gateway.url, token(admin, "ADMIN"))
    async with connected(gateway.url, token(admin, "USER", version=1)) as as_user:
        someone_elses, own = update(unique("someone")), update(admin)
        await push(emitter, someone_elses)
        await push(emitter, own)
        await until(lambda: own.order_id in as_user.updates, "the user's own push")
        assert as_user.updates == [own.order_id]


async def test_a_logout_ends_only_that_logins_socket(gateway: UvicornThread, redis: Redis) -> None:
    user, phone, laptop = unique("user"), str(uuid.uuid4()), str(uuid.uuid4())
    async with (
        connected(gateway.url, token(user, family=phone)) as on_phone,
        connected(gateway.url, token(user, family=laptop)) as on_laptop,
    ):
        await revoke_family(redis, user, phone)
        await ended(on_phone, "revoked")
        assert on_laptop.sio.connected
        assert on_laptop.ended == []


async def test_a_revoked_token_neither_connects_nor_passes_the_proxy(
    gateway: UvicornThread, redis: Redis
) -> None:
    user = unique("user")
    stale = token(user)
    # Only the marker, as if the announcement had been missed.
    await redis.set(user_marker_key(user), "1", ex=960)
    assert await refusal(gateway.url, stale) == "The access token has been revoked."
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{gateway.url}/orders/42", headers={"Authorization": f"Bearer {stale}"}
        )
    assert response.status_code == 401
    assert response.json()["detail"] == "The access token has been revoked."
