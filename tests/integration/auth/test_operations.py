"""Start-up, the create-admin command, probes, metrics, rehashing and token pruning."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from services.auth.commands import create_admin
from services.auth.main import create_app
from services.auth.service import AuthService
from services.auth.settings import Settings
from tests.integration.auth.conftest import ClientFactory, SettingsFactory, running
from tests.integration.auth.support import PASSWORD, bearer, login, register, unique_email

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def stored_hash(db_conninfo: str, email: str) -> str:
    async with await psycopg.AsyncConnection.connect(db_conninfo) as conn:
        cursor = await conn.execute(
            "SELECT password_hash FROM auth.users WHERE email = %s", (email,)
        )
        row = await cursor.fetchone()
    assert row is not None
    value: str = row[0]
    return value


async def test_readyz_checks_postgres_and_redis(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"postgres": "ok", "redis": "ok", "jobs": "ok"},
    }
    assert (await client.get("/healthz")).status_code == 200


async def test_metrics_count_logins_by_outcome_and_registrations(
    client: httpx.AsyncClient,
) -> None:
    def value(text: str, name: str, outcome: str) -> float:
        match = re.search(rf'^{name}{{outcome="{outcome}"}} (\S+)$', text, re.MULTILINE)
        assert match, f"{name}{{outcome={outcome}}} not exported"
        return float(match.group(1))

    before = (await client.get("/metrics")).text
    email = unique_email()
    await register(client, email)
    await login(client, email)
    await client.post("/auth/login", json={"email": email, "password": "wrong password"})
    after = (await client.get("/metrics")).text

    assert value(after, "auth_registrations_total", "created") == (
        value(before, "auth_registrations_total", "created") + 1
    )
    for outcome in ("success", "invalid"):
        assert value(after, "auth_logins_total", outcome) == (
            value(before, "auth_logins_total", outcome) + 1
        )
    assert value(after, "auth_logins_total", "rate_limited") == value(
        before, "auth_logins_total", "rate_limited"
    )


async def test_create_admin_command_creates_then_promotes(
    make_settings: SettingsFactory, start_client: ClientFactory
) -> None:
    settings = make_settings()
    admin_email = unique_email("admin")
    # Before the service has ever run: the command applies the migrations itself.
    await create_admin(settings, admin_email.upper(), PASSWORD)
    await create_admin(settings, admin_email, "a different password")

    async with start_client(settings) as client:
        admin = await login(client, admin_email)
        assert admin["user"]["role"] == "ADMIN"
        assert admin["user"]["email"] == admin_email
        email = unique_email()
        await register(client, email)
    await create_admin(settings, email, "not the registrant's password")
    async with start_client(settings) as client:
        page = await client.get("/auth/users", headers=bearer(admin["accessToken"]))
        roles = {u["email"]: u["role"] for u in page.json()["items"]}
        # Promotion grants the role and keeps the account's own password.
        assert (await login(client, email))["user"]["role"] == "ADMIN"
    assert roles == {admin_email: "ADMIN", email: "ADMIN"}


async def test_create_admin_refuses_a_weak_password_or_bad_email(settings: Settings) -> None:
    with pytest.raises(ValueError, match="at least 8"):
        await create_admin(settings, unique_email(), "short")
    with pytest.raises(ValueError, match="not a valid email"):
        await create_admin(settings, "nobody", PASSWORD)


async def test_a_weak_bootstrap_password_stops_the_start(make_settings: SettingsFactory) -> None:
    settings = make_settings(ADMIN_EMAIL=unique_email(), ADMIN_PASSWORD="short")
    with pytest.raises(ValueError, match="admin password"):
        async with running(create_app(settings)):
            pass


async def test_login_rehashes_a_password_hashed_with_old_parameters(
    make_settings: SettingsFactory, start_client: ClientFactory, db_conninfo: str
) -> None:
    email = unique_email()
    async with start_client(make_settings()) as client:
        await register(client, email)
    old = await stored_hash(db_conninfo, email)
    assert old.startswith("$argon2id$")
    assert ",t=1," in old

    async with start_client(make_settings(ARGON2_TIME_COST=2)) as client:
        await login(client, email)
        new = await stored_hash(db_conninfo, email)
        assert new != old
        assert ",t=2," in new
        await login(client, email)
        assert await stored_hash(db_conninfo, email) == new


async def test_prune_deletes_only_long_expired_refresh_tokens(
    settings: Settings, db_conninfo: str
) -> None:
    app: FastAPI = create_app(settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
            email = unique_email()
            await register(client, email)
            await login(client, email)
            await login(client, email)
        async with await psycopg.AsyncConnection.connect(db_conninfo) as conn:
            await conn.execute(
                "UPDATE auth.refresh_tokens SET expires_at = %s"
                " WHERE id = (SELECT min(id) FROM auth.refresh_tokens)",
                (datetime.now(UTC) - timedelta(seconds=settings.refresh_token_ttl_seconds + 60),),
            )
        service: AuthService = app.state.auth_service
        assert await service.prune_refresh_tokens() == 1
        assert await service.prune_refresh_tokens() == 0
        async with await psycopg.AsyncConnection.connect(db_conninfo) as conn:
            cursor = await conn.execute("SELECT count(*) FROM auth.refresh_tokens")
            assert await cursor.fetchone() == (1,)
