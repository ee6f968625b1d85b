"""Authorization follows auth's database: a new role, a logout, a revoked refresh family or a
deactivated account ends the access tokens it concerns at once, in every service.

"Every service" is a second app built from the kit the way orders, inventory and notifications
are, verifying tokens on its own against the same Redis; it never talks to auth. Each change is
expected to take effect within a deadline of the kit's cache time plus scheduling slack, polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from fastapi import APIRouter, FastAPI
from redis.asyncio import Redis

from devstack.ports import free_port
from devstack.testing import RedisServer
from services.auth.settings import Settings
from services.kit.security import CurrentAdmin, CurrentUser
from services.kit.settings import ServiceSettings
from services.kit.tokens import (
    SESSION_EVENTS_CHANNEL,
    Principal,
    issue_access_token,
    user_marker_key,
)
from services.kit.web import create_service_app
from tests.integration.auth.conftest import ClientFactory, SettingsFactory, running
from tests.integration.auth.support import (
    PASSWORD,
    bearer,
    login,
    register,
    unique_email,
)
from tests.signing import token_env

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

# The kit caches a marker for TOKEN_CHECK_CACHE_SECONDS (1 s by default); the rest is slack.
TAKES_EFFECT_WITHIN = 5.0


@pytest.fixture
def admin_email() -> str:
    return unique_email("admin")


@pytest.fixture
def settings(make_settings: SettingsFactory, admin_email: str) -> Settings:
    return make_settings(ADMIN_EMAIL=admin_email, ADMIN_PASSWORD=PASSWORD)


@pytest.fixture
async def admin_token(client: httpx.AsyncClient, admin_email: str) -> str:
    token: str = (await login(client, admin_email))["accessToken"]
    return token


def other_service(redis_url: str) -> FastAPI:
    """A service like orders: the kit's token dependencies and nothing of auth."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    settings = ServiceSettings(
        APP_ENV="test", **token_env(), REDIS_URL=redis_url, service_name="other"
    )
    app = create_service_app(settings, "other", lifespan)
    router = APIRouter()

    @router.get("/mine")
    async def mine(caller: CurrentUser) -> dict[str, str]:
        return {"userId": caller.user_id, "role": caller.role}

    @router.get("/everyone")
    async def everyone(caller: CurrentAdmin) -> dict[str, str]:
        return {"userId": caller.user_id}

    app.include_router(router)
    return app


@pytest.fixture
async def service(redis_server: RedisServer) -> AsyncIterator[httpx.AsyncClient]:
    async with running(other_service(redis_server.url)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://other") as client:
            yield client


async def within(deadline: float, check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll `check` until it holds; fail after `deadline` seconds."""
    until = time.monotonic() + deadline
    while not await check():
        if time.monotonic() > until:
            raise AssertionError(f"{what} did not happen within {deadline}s")
        await asyncio.sleep(0.05)


def answers(
    client: httpx.AsyncClient, path: str, token: str, status: int
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await client.get(path, headers=bearer(token))).status_code == status

    return check


async def set_role(client: httpx.AsyncClient, admin: str, user_id: str, role: str) -> None:
    response = await client.patch(
        f"/auth/users/{user_id}/role", json={"role": role}, headers=bearer(admin)
    )
    assert response.status_code == 200, response.text


async def set_active(
    client: httpx.AsyncClient, admin: str, user_id: str, active: bool
) -> httpx.Response:
    return await client.patch(
        f"/auth/users/{user_id}/active", json={"active": active}, headers=bearer(admin)
    )


async def test_a_demoted_admin_loses_admin_access_in_other_services_at_once(
    client: httpx.AsyncClient, service: httpx.AsyncClient, admin_token: str
) -> None:
    email = unique_email()
    user = await register(client, email)
    await set_role(client, admin_token, user["id"], "ADMIN")
    second_admin = await login(client, email)
    token = second_admin["accessToken"]
    assert (await service.get("/everyone", headers=bearer(token))).status_code == 200

    await set_role(client, admin_token, user["id"], "USER")

    await within(TAKES_EFFECT_WITHIN, answers(service, "/everyone", token, 401), "the demotion")
    refused = await service.get("/mine", headers=bearer(token))
    assert refused.json()["detail"] == "The access token has been revoked."
    # The refreshed token carries the role the database holds now.
    refreshed = await client.post(
        "/auth/refresh", json={"refreshToken": second_admin["refreshToken"]}
    )
    new_token = refreshed.json()["accessToken"]
    assert (await service.get("/mine", headers=bearer(new_token))).json()["role"] == "USER"
    assert (await service.get("/everyone", headers=bearer(new_token))).status_code == 403


async def test_logout_ends_that_logins_access_token_and_no_other(
    client: httpx.AsyncClient, service: httpx.AsyncClient
) -> None:
    email = unique_email()
    await register(client, email)
    phone, laptop = await login(client, email), await login(client, email)
    assert (await service.get("/mine", headers=bearer(phone["accessToken"]))).status_code == 200

    logout = await client.post("/auth/logout", json={"refreshToken": phone["refreshToken"]})
    assert logout.status_code == 204

    await within(
        TAKES_EFFECT_WITHIN, answers(service, "/mine", phone["accessToken"], 401), "the logout"
    )
    assert (await service.get("/mine", headers=bearer(laptop["accessToken"]))).status_code == 200


async def test_refresh_token_reuse_ends_the_familys_access_tokens(
    client: httpx.AsyncClient, service: httpx.AsyncClient
) -> None:
    email = unique_email()
    await register(client, email)
    first = await login(client, email)
    rotated = (
        await client.post("/auth/refresh", json={"refreshToken": first["refreshToken"]})
    ).json()
    assert (await service.get("/mine", headers=bearer(rotated["accessToken"]))).status_code == 200

    reuse = await client.post("/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert reuse.status_code == 401

    await within(
        TAKES_EFFECT_WITHIN,
        answers(service, "/mine", rotated["accessToken"], 401),
        "the family's revocation",
    )


async def test_a_deactivated_account_is_shut_out_until_activated_again(
    client: httpx.AsyncClient, service: httpx.AsyncClient, admin_token: str
) -> None:
    email = unique_email()
    user = await register(client, email)
    tokens = await login(client, email)

    deactivated = await set_active(client, admin_token, user["id"], False)
    assert deactivated.status_code == 200
    assert deactivated.json()["active"] is False

    await within(
        TAKES_EFFECT_WITHIN,
        answers(service, "/mine", tokens["accessToken"], 401),
        "the deactivation",
    )
    refused = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert refused.status_code == 403
    assert refused.json()["detail"] == "This account has been deactivated."
    no_refresh = await client.post("/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert no_refresh.status_code == 401
    # A wrong password still says only that it is wrong.
    wrong = await client.post("/auth/login", json={"email": email, "password": "not it at all"})
    assert wrong.status_code == 401

    assert (await set_active(client, admin_token, user["id"], True)).status_code == 200
    again = await login(client, email)
    assert (await service.get("/mine", headers=bearer(again["accessToken"]))).status_code == 200


async def test_the_last_active_admin_cannot_be_deactivated(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    me = (await client.get("/auth/verify", headers=bearer(admin_token))).json()["user"]
    refused = await set_active(client, admin_token, me["id"], False)
    assert refused.status_code == 409
    user = await register(client)
    assert (await set_active(client, admin_token, user["id"], False)).status_code == 200
    non_admin = await client.patch(
        f"/auth/users/{me['id']}/active", json={"active": False}, headers={}
    )
    assert non_admin.status_code == 401


async def test_each_change_is_announced_for_the_gateways(
    client: httpx.AsyncClient, admin_token: str, redis_server: RedisServer
) -> None:
    email = unique_email()
    user = await register(client, email)
    tokens = await login(client, email)
    redis = Redis.from_url(redis_server.url)
    pubsub = redis.pubsub()
    await pubsub.subscribe(SESSION_EVENTS_CHANNEL)
    try:
        await set_role(client, admin_token, user["id"], "ADMIN")
        await client.post("/auth/logout", json={"refreshToken": tokens["refreshToken"]})
        events: list[dict[str, Any]] = []

        async def two_heard() -> bool:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None and orjson.loads(message["data"])["userId"] == user["id"]:
                events.append(orjson.loads(message["data"]))
            return len(events) == 2

        await within(TAKES_EFFECT_WITHIN, two_heard, "the announcements")
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await redis.aclose()
    assert events[0] == {"userId": user["id"], "minVersion": 1}
    assert set(events[1]) == {"userId", "familyId"}
    uuid.UUID(events[1]["familyId"])


async def test_a_change_redis_cannot_enforce_is_refused_and_not_made(
    make_settings: SettingsFactory,
    settings: Settings,
    start_client: ClientFactory,
    client: httpx.AsyncClient,
    admin_token: str,
    redis_server: RedisServer,
) -> None:
    email = unique_email()
    user = await register(client, email)
    tokens = await login(client, email)
    without_redis = make_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    async with start_client(without_redis) as cut_off:
        refused = await cut_off.patch(
            f"/auth/users/{user['id']}/role", json={"role": "ADMIN"}, headers=bearer(admin_token)
        )
        assert refused.status_code == 503
        assert refused.json()["type"].endswith("/session-store-unavailable")
        refused = await set_active(cut_off, admin_token, user["id"], False)
        assert refused.status_code == 503
        # Checks fail open while Redis is away (see services/kit/tokens.py): tokens still work.
        verified = await cut_off.get("/auth/verify", headers=bearer(tokens["accessToken"]))
        assert verified.status_code == 200
    assert verified.json()["user"]["role"] == "USER"
    assert verified.json()["user"]["active"] is True
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        assert await redis.get(user_marker_key(user["id"])) is None
    finally:
        await redis.aclose()


async def test_tokens_signed_before_versions_existed_keep_working(
    client: httpx.AsyncClient, service: httpx.AsyncClient, settings: Settings
) -> None:
    """A token without `ver` or `sid` (signed before an upgrade) is version 0 of no family."""
    email = unique_email()
    user = await register(client, email)
    legacy = issue_access_token(
        settings, settings.signing_key, Principal(user["id"], email, "USER")
    )
    assert (await service.get("/mine", headers=bearer(legacy))).status_code == 200
