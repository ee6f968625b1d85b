"""Register, login, verify, refresh and logout through the HTTP API."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from tests.integration.auth.support import (
    PASSWORD,
    bearer,
    login,
    register,
    unique_email,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_register_login_verify_refresh_logout(client: httpx.AsyncClient) -> None:
    email = unique_email()
    user = await register(client, email.upper())
    assert set(user) == {"id", "email", "name", "role", "active", "createdAt"}
    assert user["email"] == email
    assert user["role"] == "USER"
    assert user["name"] == "Ada"

    tokens = await login(client, email.upper())
    assert tokens["tokenType"] == "Bearer"
    assert tokens["expiresIn"] == 900
    assert tokens["user"] == user

    verified = await client.get("/auth/verify", headers=bearer(tokens["accessToken"]))
    assert verified.status_code == 200
    assert verified.json() == {"user": user}

    refreshed = await client.post("/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert refreshed.status_code == 200, refreshed.text
    pair = refreshed.json()
    assert pair["refreshToken"] != tokens["refreshToken"]
    assert pair["user"] == user
    verified = await client.get("/auth/verify", headers=bearer(pair["accessToken"]))
    assert verified.json() == {"user": user}

    logout = await client.post("/auth/logout", json={"refreshToken": pair["refreshToken"]})
    assert logout.status_code == 204
    assert logout.content == b""
    after = await client.post("/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    assert after.status_code == 401


async def test_refresh_tokens_are_stored_only_as_hashes(
    client: httpx.AsyncClient, db_conninfo: str
) -> None:
    email = unique_email()
    await register(client, email)
    tokens = await login(client, email)
    async with await psycopg.AsyncConnection.connect(db_conninfo) as conn:
        cursor = await conn.execute("SELECT token_hash FROM auth.refresh_tokens")
        stored = [row[0] for row in await cursor.fetchall()]
    assert len(stored) == 1
    assert len(stored[0]) == 32
    assert tokens["refreshToken"].encode() not in bytes(stored[0])


async def test_duplicate_email_is_409_whatever_its_case(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(client, email)
    response = await client.post(
        "/auth/register", json={"email": email.upper(), "password": PASSWORD, "name": "Bob"}
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 409
    assert "already exists" in response.json()["detail"]


async def test_malformed_input_is_422_with_field_errors(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register", json={"email": "not-an-email", "password": "short"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"email", "password", "name"}

    too_long = await client.post(
        "/auth/register", json={"email": unique_email(), "password": "x" * 129, "name": "Ada"}
    )
    assert too_long.status_code == 422
    assert [e["field"] for e in too_long.json()["errors"]] == ["password"]

    login = await client.post("/auth/login", json={"email": unique_email()})
    assert login.status_code == 422
    assert [e["field"] for e in login.json()["errors"]] == ["password"]


async def test_a_self_assigned_admin_role_is_refused(client: httpx.AsyncClient) -> None:
    email = unique_email()
    refused = await client.post(
        "/auth/register",
        json={"email": email, "password": PASSWORD, "name": "Ada", "role": "ADMIN"},
    )
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["role"]
    user = await register(client, email)
    assert user["role"] == "USER"
    tokens = await login(client, email)
    assert tokens["user"]["role"] == "USER"
    verified = await client.get("/auth/verify", headers=bearer(tokens["accessToken"]))
    assert verified.json()["user"]["role"] == "USER"
    admin_only = await client.get("/auth/users", headers=bearer(tokens["accessToken"]))
    assert admin_only.status_code == 403


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email()
    await register(client, email)
    wrong_password = await client.post(
        "/auth/login", json={"email": email, "password": "not the password"}
    )
    unknown_email = await client.post(
        "/auth/login", json={"email": unique_email(), "password": "not the password"}
    )
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()
    assert wrong_password.json()["detail"] == "Invalid email or password."
    assert wrong_password.headers["www-authenticate"] == "Bearer"
    assert unknown_email.headers["www-authenticate"] == "Bearer"


async def test_reusing_a_rotated_refresh_token_revokes_its_family(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email()
    await register(client, email)
    first = await login(client, email)
    other_device = await login(client, email)

    rotated = await client.post("/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert rotated.status_code == 200
    newer = rotated.json()["refreshToken"]

    reuse = await client.post("/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert reuse.status_code == 401
    assert reuse.headers["content-type"] == "application/problem+json"
    newer_after_reuse = await client.post("/auth/refresh", json={"refreshToken": newer})
    assert newer_after_reuse.status_code == 401

    # Another login is another family: it keeps working.
    untouched = await client.post(
        "/auth/refresh", json={"refreshToken": other_device["refreshToken"]}
    )
    assert untouched.status_code == 200


async def test_logout_revokes_the_family_and_is_idempotent(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(client, email)
    first = (await login(client, email))["refreshToken"]
    second = (await client.post("/auth/refresh", json={"refreshToken": first})).json()[
        "refreshToken"
    ]

    for _ in range(2):
        response = await client.post("/auth/logout", json={"refreshToken": second})
        assert response.status_code == 204
    refused = await client.post("/auth/refresh", json={"refreshToken": second})
    assert refused.status_code == 401

    unknown = await client.post("/auth/logout", json={"refreshToken": "never-issued"})
    assert unknown.status_code == 204


async def test_an_unknown_refresh_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/refresh", json={"refreshToken": "never-issued"})
    assert response.status_code == 401
    assert response.json()["detail"] == "The refresh token is not valid."


async def test_an_expired_refresh_token_is_401(client: httpx.AsyncClient, db_conninfo: str) -> None:
    email = unique_email()
    await register(client, email)
    tokens = await login(client, email)
    async with await psycopg.AsyncConnection.connect(db_conninfo) as conn:
        await conn.execute(
            "UPDATE auth.refresh_tokens SET expires_at = now() - interval '1 second'"
        )
    response = await client.post("/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert response.status_code == 401


async def test_verify_reads_the_account_fresh(client: httpx.AsyncClient, db_conninfo: str) -> None:
    email = unique_email()
    user = await register(client, email)
    token = (await login(client, email))["accessToken"]
    async with await psycopg.AsyncConnection.connect(db_conninfo) as conn:
        await conn.execute("UPDATE auth.users SET name = 'Renamed' WHERE id = %s", (user["id"],))
    renamed = await client.get("/auth/verify", headers=bearer(token))
    assert renamed.json()["user"]["name"] == "Renamed"

    async with await psycopg.AsyncConnection.connect(db_conninfo) as conn:
        await conn.execute("DELETE FROM auth.users WHERE id = %s", (user["id"],))
    gone = await client.get("/auth/verify", headers=bearer(token))
    assert gone.status_code == 401


async def test_answers_with_tokens_are_never_cached(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(client, email)
    logged_in = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    refreshed = await client.post(
        "/auth/refresh", json={"refreshToken": logged_in.json()["refreshToken"]}
    )
    for response in (logged_in, refreshed):
        assert response.status_code == 200
        assert "refreshToken" in response.json()
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["pragma"] == "no-cache"
