"""Live order updates through the gateway's Socket.IO server, with real clients.

The gateway runs under uvicorn on a free port, its Socket.IO server mounted at /socket.io/ and
fed through the session's real Redis; pushes are made the way the services make them
(`push_order_update` through a write-only Redis manager). A stub of the orders service, also
under uvicorn, answers the timeline lookup of `order.sync` and checks the bearer token it
receives, as the real service does.

Whether a client did NOT receive a push is decided without waiting for a timeout: pushes go
through one Redis channel and one listener in the gateway, in order, and reach each client
over one connection, in order. So once a client has received a push published after another
one, it would already have received the other one if it were meant for it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import socketio
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

from devstack.testing import RedisServer
from services.gateway.main import create_app
from services.gateway.settings import Settings
from services.kit.errors import Unauthorized, problem
from services.kit.live import ORDER_UPDATED, SYNC_REQUEST, OrderUpdate, create_emitter
from services.kit.live import push_order_update as push
from services.kit.tokens import Principal, Role, bearer_token
from services.kit.tokens import verify_access_token as verify
from tests.integration.gateway.support import UvicornThread, closed_port
from tests.signing import sign, token_env

pytestmark = pytest.mark.integration

ORIGIN = "http://localhost:5173"
OWNER = "user-owner"
ORDER_ID = str(uuid.uuid4())
TIMELINE: list[dict[str, Any]] = [
    {"status": status, "actor": actor, "reason": None, "eventId": None, "version": version}
    for version, (status, actor) in enumerate(
        [("CREATED", OWNER), ("CONFIRMED", "inventory"), ("SHIPPED", "admin-1")], start=1
    )
]


def token_settings(redis_url: str = "redis://127.0.0.1:1/0") -> Settings:
    return Settings(APP_ENV="test", **token_env(), REDIS_URL=redis_url)


def token(user_id: str, role: Role = "USER", *, now: datetime | None = None) -> str:
    principal = Principal(user_id=user_id, email=f"{user_id}@example.com", role=role)
    return sign(token_settings(), principal, now=now)


def orders_stub(raw_paths: list[str]) -> FastAPI:
    """GET /orders/{id}/timeline as the orders service answers it: owner or admin, else 404.

    Every request's raw path is appended to `raw_paths`.
    """
    app = FastAPI()
    settings = token_settings()

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Any:
        raw_paths.append(request.scope["raw_path"].decode())
        return await call_next(request)

    @app.get("/orders/{order_id}/timeline", response_model=None)
    async def timeline(
        order_id: str,
        request: Request,
        since_version: int = Query(default=0, alias="sinceVersion", ge=0),
    ) -> JSONResponse | list[dict[str, Any]]:
        try:
            caller = verify(settings, bearer_token(request.headers.get("authorization")))
        except Unauthorized as exc:
            return problem(401, exc.detail, code="unauthorized")
        if order_id != ORDER_ID or not (caller.user_id == OWNER or caller.is_admin):
            return problem(404, "Order not found.", code="not-found")
        return [entry for entry in TIMELINE if entry["version"] > since_version]

    return app


@dataclass
class Listener:
    """A real Socket.IO client, recording every `order.updated` and any connection refusal."""

    sio: socketio.AsyncClient = field(default_factory=socketio.AsyncClient)
    updates: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sio.on(ORDER_UPDATED, self.updates.append)
        self.sio.on("connect_error", self.refusals.append)

    def orders(self) -> list[str]:
        return [update["orderId"] for update in self.updates]

    async def sync(self, data: Any) -> dict[str, Any]:
        answer: dict[str, Any] = await self.sio.call(SYNC_REQUEST, data, timeout=10)
        return answer


@asynccontextmanager
async def listening(
    url: str, auth_token: str | None = None, **connect: Any
) -> AsyncIterator[Listener]:
    listener = Listener()
    connect.setdefault("transports", ["websocket"])
    await listener.sio.connect(
        url,
        auth={"token": auth_token} if auth_token else None,
        wait_timeout=5,
        **connect,
    )
    try:
        yield listener
    finally:
        await listener.sio.disconnect()


async def refusal(url: str, auth_token: str | None = None, **connect: Any) -> str:
    """The reason the gateway gives for refusing a connection."""
    listener = Listener()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await listener.sio.connect(
            url,
            auth={"token": auth_token} if auth_token else None,
            transports=["websocket"],
            wait_timeout=5,
            **connect,
        )
    assert not listener.sio.connected
    await listener.sio.disconnect()
    assert listener.refusals, "the server gave no reason"
    reason: str = listener.refusals[-1]["message"]
    return reason


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def until(condition: Callable[[], bool], what: str, within: float = 10) -> None:
    async def check() -> bool:
        return condition()

    await eventually(check, what, within)


def update(user_id: str, order_id: str | None = None, version: int = 1) -> OrderUpdate:
    return OrderUpdate(
        order_id=order_id or str(uuid.uuid4()),
        user_id=user_id,
        status="CONFIRMED",
        version=version,
        time=datetime.now(UTC),
    )


async def received(listener: Listener, order_id: str) -> None:
    await until(lambda: order_id in listener.orders(), f"the push of {order_id}")


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def orders_paths() -> list[str]:
    return []


@pytest.fixture(scope="module")
def orders(orders_paths: list[str]) -> Iterator[UvicornThread]:
    with UvicornThread(orders_stub(orders_paths)) as server:
        yield server


def gateway_settings(redis_url: str, orders_url: str) -> Settings:
    return Settings(
        APP_ENV="test",
        **token_env(),
        REDIS_URL=redis_url,
        ORDER_SERVICE_URL=orders_url,
        CORS_ORIGINS=ORIGIN,
        UPSTREAM_TIMEOUT_SECONDS=2,
    )


@pytest.fixture(scope="module")
def gateway(redis_server: RedisServer, orders: UvicornThread) -> Iterator[UvicornThread]:
    with UvicornThread(create_app(gateway_settings(redis_server.url, orders.url))) as server:
        yield server


@pytest.fixture(scope="module")
async def emitter(
    redis_server: RedisServer, gateway: UvicornThread
) -> AsyncIterator[socketio.AsyncRedisManager]:
    """The services' way of pushing, once the gateway is known to hear Redis."""
    manager = create_emitter(redis_server.url)
    async with listening(gateway.url, token("admin-warm-up", "ADMIN")) as admin:
        probe = update("nobody")

        async def heard() -> bool:
            await push(manager, probe)
            await asyncio.sleep(0.05)
            return probe.order_id in admin.orders()

        await eventually(heard, "the gateway to hear pushes on Redis")
    yield manager
    await manager.close()


# --- who may connect ----------------------------------------------------------------------


async def test_connecting_without_a_token_is_refused(gateway: UvicornThread) -> None:
    assert await refusal(gateway.url) == "An access token is required."


def _tampered(value: str) -> str:
    header, payload, signature = value.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "ADMIN"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def test_a_tampered_or_expired_token_is_refused(gateway: UvicornThread) -> None:
    tampered = _tampered(token("user-t"))
    assert await refusal(gateway.url, tampered) == "The access token is not valid."
    expired = token("user-t", now=datetime.now(UTC) - timedelta(hours=2))
    assert await refusal(gateway.url, expired) == "The access token has expired."
    wrong_scheme = {"Authorization": "Basic dXNlcjpwdw=="}
    assert "Bearer" in await refusal(gateway.url, headers=wrong_scheme)


async def test_a_valid_token_connects_in_the_auth_payload_or_the_header(
    gateway: UvicornThread,
) -> None:
    async with listening(gateway.url, token("user-v")) as listener:
        assert listener.sio.connected
        assert listener.sio.get_sid() is not None
    headers = {"Authorization": f"Bearer {token('user-v')}"}
    async with listening(gateway.url, headers=headers) as listener:
        assert listener.sio.connected


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_only_the_web_apps_origins_may_connect(
    gateway: UvicornThread, transport: str
) -> None:
    foreign = {"Origin": "http://evil.example"}
    listener = Listener()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await listener.sio.connect(
            gateway.url,
            auth={"token": token("user-o")},
            headers=foreign,
            transports=[transport],
            wait_timeout=5,
        )
    assert not listener.sio.connected
    await listener.sio.disconnect()
    assert listener.refusals[-1]["message"] == "The origin http://evil.example is not allowed."
    async with listening(
        gateway.url, token("user-o"), headers={"Origin": ORIGIN}, transports=[transport]
    ) as allowed:
        assert allowed.sio.connected


async def test_polling_upgrades_to_a_websocket_through_the_gateways_middleware(
    gateway: UvicornThread,
) -> None:
    async with listening(
        gateway.url, token("user-p"), transports=["polling", "websocket"]
    ) as listener:
        await until(lambda: listener.sio.transport() == "websocket", "the upgrade")


def test_the_handshake_is_served_on_the_gateways_origin_with_its_cors_and_request_id(
    gateway: UvicornThread,
) -> None:
    handshake = httpx.get(
        f"{gateway.url}/socket.io/",
        params={"EIO": "4", "transport": "polling"},
        headers={"Origin": ORIGIN},
    )
    assert handshake.status_code == 200
    assert handshake.text.startswith("0{")
    assert '"sid"' in handshake.text
    assert handshake.headers.get_list("access-control-allow-origin") == [ORIGIN]
    assert len(handshake.headers.get_list("x-request-id")) == 1
    # the proxy still decides its own paths (no token: 401 before any upstream)
    assert httpx.get(f"{gateway.url}/orders").status_code == 401


# --- who receives what --------------------------------------------------------------------


async def test_a_user_receives_their_own_updates_and_not_another_users(
    gateway: UvicornThread, emitter: socketio.AsyncRedisManager
) -> None:
    async with (
        listening(gateway.url, token("user-a")) as alice,
        listening(gateway.url, token("user-b")) as bob,
    ):
        for_alice, for_bob = update("user-a", version=2), update("user-b")
        await push(emitter, for_alice)
        await push(emitter, for_bob)
        await received(bob, for_bob.order_id)
        await received(alice, for_alice.order_id)
        assert bob.orders() == [for_bob.order_id]
        assert alice.orders() == [for_alice.order_id]
        assert alice.updates[0] == {
            "orderId": for_alice.order_id,
            "userId": "user-a",
            "status": "CONFIRMED",
            "version": 2,
            "time": for_alice.time.isoformat().replace("+00:00", "Z"),
            "reason": None,
        }


async def test_an_admin_receives_every_users_updates(
    gateway: UvicornThread, emitter: socketio.AsyncRedisManager
) -> None:
    async with listening(gateway.url, token("admin-1", "ADMIN")) as admin:
        pushes = [update("user-a"), update("user-b"), update("user-c")]
        for each in pushes:
            await push(emitter, each)
        await received(admin, pushes[-1].order_id)
        assert admin.orders() == [each.order_id for each in pushes]


async def test_a_client_cannot_join_another_room(
    gateway: UvicornThread, emitter: socketio.AsyncRedisManager
) -> None:
    async with (
        listening(gateway.url, token("user-m")) as mallory,
        listening(gateway.url, token("user-v")) as victim,
    ):
        for event in ("join", "enter_room", "subscribe"):
            for room in ("user:user-v", "admins"):
                await mallory.sio.emit(event, room)
                await mallory.sio.emit(event, {"room": room})
        # an acknowledged call after the emits: the server has read them all by its answer
        assert await mallory.sync({}) == {"error": "orderId is required"}
        for_victim, for_mallory = update("user-v"), update("user-m")
        await push(emitter, for_victim)
        await push(emitter, for_mallory)
        await received(mallory, for_mallory.order_id)
        await received(victim, for_victim.order_id)
        assert mallory.orders() == [for_mallory.order_id]


# --- catching up with order.sync ----------------------------------------------------------


async def test_sync_returns_what_the_owner_missed_since_a_version(gateway: UvicornThread) -> None:
    async with listening(gateway.url, token(OWNER)) as owner:
        answer = await owner.sync({"orderId": ORDER_ID, "sinceVersion": 1})
        assert answer == {"orderId": ORDER_ID, "updates": TIMELINE[1:]}
        everything = await owner.sync({"orderId": ORDER_ID})
        assert [entry["version"] for entry in everything["updates"]] == [1, 2, 3]


async def test_sync_asks_the_orders_service_with_the_clients_own_token(
    gateway: UvicornThread,
) -> None:
    async with listening(gateway.url, token("admin-2", "ADMIN")) as admin:
        answer = await admin.sync({"orderId": ORDER_ID, "sinceVersion": 2})
        assert answer == {"orderId": ORDER_ID, "updates": TIMELINE[2:]}
    async with listening(gateway.url, token("user-stranger")) as stranger:
        answer = await stranger.sync({"orderId": ORDER_ID, "sinceVersion": 0})
        assert answer == {"orderId": ORDER_ID, "error": "Order not found."}


@pytest.mark.parametrize(
    ("request_data", "error"),
    [
        ({}, "orderId is required"),
        ({"sinceVersion": 1}, "orderId is required"),
        ({"orderId": 42}, "orderId is required"),
        ("not an object", "orderId is required"),
        ({"orderId": ORDER_ID, "sinceVersion": -1}, "sinceVersion must be a non-negative integer"),
        ({"orderId": ORDER_ID, "sinceVersion": "1"}, "sinceVersion must be a non-negative integer"),
    ],
)
async def test_sync_refuses_a_malformed_request(
    gateway: UvicornThread, request_data: Any, error: str
) -> None:
    async with listening(gateway.url, token(OWNER)) as owner:
        answer = await owner.sync(request_data)
        assert answer["error"] == error
        assert "updates" not in answer


async def test_an_order_id_stays_one_path_segment(
    gateway: UvicornThread, orders_paths: list[str]
) -> None:
    async with listening(gateway.url, token(OWNER)) as owner:
        crafted = f"../../auth/users?x=#{ORDER_ID}"
        answer = await owner.sync({"orderId": crafted})
        assert answer["orderId"] == crafted
        assert "updates" not in answer
        assert (
            orders_paths[-1] == "/orders/..%2F..%2Fauth%2Fusers%3Fx%3D%23" + ORDER_ID + "/timeline"
        )


# --- a gateway of its own -----------------------------------------------------------------


async def test_sync_answers_an_error_when_the_orders_service_is_down(
    redis_server: RedisServer,
) -> None:
    settings = gateway_settings(redis_server.url, f"http://127.0.0.1:{closed_port()}")
    with UvicornThread(create_app(settings)) as gateway:
        async with listening(gateway.url, token(OWNER)) as owner:
            answer = await owner.sync({"orderId": ORDER_ID})
            assert answer == {"orderId": ORDER_ID, "error": "The orders service is unavailable."}


def test_readiness_includes_redis(gateway: UvicornThread) -> None:
    ready = httpx.get(f"{gateway.url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"redis": "ok", "jobs": "ok"}}
    settings = gateway_settings(f"redis://127.0.0.1:{closed_port()}/0", gateway.url)
    with UvicornThread(create_app(settings)) as without_redis:
        not_ready = httpx.get(f"{without_redis.url}/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["checks"]["redis"] != "ok"
        # the proxy itself keeps working
        assert httpx.get(f"{without_redis.url}/orders").status_code == 401


async def test_the_gateway_stops_promptly_with_clients_connected(
    redis_server: RedisServer, orders: UvicornThread
) -> None:
    gateway = UvicornThread(create_app(gateway_settings(redis_server.url, orders.url)))
    with gateway:
        listener = Listener()
        await listener.sio.connect(
            gateway.url, auth={"token": token(OWNER)}, transports=["websocket"], wait_timeout=5
        )
        started = time.monotonic()
    assert not gateway.thread.is_alive()
    assert time.monotonic() - started < 5
    await until(lambda: not listener.sio.connected, "the disconnect")
    await listener.sio.disconnect()
