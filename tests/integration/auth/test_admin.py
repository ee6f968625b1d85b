"""Admins list users and change roles; the platform never loses its last admin."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest

from services.auth.settings import Settings
from tests.integration.auth.conftest import ClientFactory, SettingsFactory
from tests.integration.auth.support import PASSWORD, bearer, login, register, unique_email

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture
def admin_email() -> str:
    return unique_email("admin")


@pytest.fixture
def settings(make_settings: SettingsFactory, admin_email: str) -> Settings:
    return make_settings(ADMIN_EMAIL=admin_email, ADMIN_PASSWORD=PASSWORD)


@pytest.fixture
async def admin_token(client: httpx.AsyncClient, admin_email: str) -> str:
    tokens = await login(client, admin_email)
    assert tokens["user"]["role"] == "ADMIN"
    token: str = tokens["accessToken"]
    return token


async def change_role(
    client: httpx.AsyncClient, token: str, user_id: str, role: str
) -> httpx.Response:
    return await client.patch(
        f"/auth/users/{user_id}/role", json={"role": role}, headers=bearer(token)
    )


async def test_admin_lists_users_a_page_at_a_time(
    client: httpx.AsyncClient, admin_token: str, admin_email: str
) -> None:
    registered = [await register(client) for _ in range(3)]

    first = await client.get("/auth/users?limit=2", headers=bearer(admin_token))
    assert first.status_code == 200
    page = first.json()
    assert page["total"] == 4
    assert (page["limit"], page["offset"]) == (2, 0)
    assert [u["email"] for u in page["items"]] == [admin_email, registered[0]["email"]]

    rest = await client.get("/auth/users?limit=2&offset=2", headers=bearer(admin_token))
    assert rest.json()["items"] == registered[1:]
    assert all("passwordHash" not in u and "password_hash" not in u for u in page["items"])

    too_many = await client.get("/auth/users?limit=1000", headers=bearer(admin_token))
    assert too_many.status_code == 422


async def test_admin_changes_a_role_and_verify_sees_it(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    email = unique_email()
    user = await register(client, email)
    tokens = await login(client, email)

    promoted = await change_role(client, admin_token, user["id"], "ADMIN")
    assert promoted.status_code == 200
    assert promoted.json() == {**user, "role": "ADMIN"}
    # The old token says USER, so it is revoked; the refreshed one carries the new role.
    stale = await client.get("/auth/verify", headers=bearer(tokens["accessToken"]))
    assert stale.status_code == 401
    refreshed = await client.post("/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert refreshed.json()["user"]["role"] == "ADMIN"
    verified = await client.get("/auth/verify", headers=bearer(refreshed.json()["accessToken"]))
    assert verified.json()["user"]["role"] == "ADMIN"

    demoted = await change_role(client, admin_token, user["id"], "USER")
    assert demoted.json()["role"] == "USER"

    invalid = await change_role(client, admin_token, user["id"], "SUPERUSER")
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "role"


async def test_a_demoted_admin_loses_admin_routes_before_the_token_expires(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    email = unique_email()
    user = await register(client, email)
    assert (await change_role(client, admin_token, user["id"], "ADMIN")).status_code == 200
    second_admin = await login(client, email)
    assert (await change_role(client, admin_token, user["id"], "USER")).status_code == 200

    response = await client.get("/auth/users", headers=bearer(second_admin["accessToken"]))
    assert response.status_code == 401
    assert response.json()["detail"] == "The access token has been revoked."
    refreshed = await client.post(
        "/auth/refresh", json={"refreshToken": second_admin["refreshToken"]}
    )
    assert refreshed.json()["user"]["role"] == "USER"
    response = await client.get("/auth/users", headers=bearer(refreshed.json()["accessToken"]))
    assert response.status_code == 403


async def test_unknown_user_is_404(client: httpx.AsyncClient, admin_token: str) -> None:
    response = await change_role(client, admin_token, str(uuid.uuid4()), "ADMIN")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    malformed = await change_role(client, admin_token, "not-a-uuid", "ADMIN")
    assert malformed.status_code == 422


async def test_non_admins_are_403(client: httpx.AsyncClient) -> None:
    email = unique_email()
    user = await register(client, email)
    token = (await login(client, email))["accessToken"]
    assert (await client.get("/auth/users", headers=bearer(token))).status_code == 403
    self_promotion = await change_role(client, token, user["id"], "ADMIN")
    assert self_promotion.status_code == 403
    verified = await client.get("/auth/verify", headers=bearer(token))
    assert verified.json()["user"]["role"] == "USER"


async def test_the_last_admin_cannot_be_demoted(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    me = (await client.get("/auth/verify", headers=bearer(admin_token))).json()["user"]
    refused = await change_role(client, admin_token, me["id"], "USER")
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"

    # With a second admin, stepping down is fine.
    other = await register(client)
    assert (await change_role(client, admin_token, other["id"], "ADMIN")).status_code == 200
    stepped_down = await change_role(client, admin_token, me["id"], "USER")
    assert stepped_down.status_code == 200
    assert stepped_down.json()["role"] == "USER"


async def test_admin_bootstrap_is_idempotent_across_restarts(
    settings: Settings, start_client: ClientFactory, admin_email: str
) -> None:
    ids = []
    for _ in range(2):
        async with start_client(settings) as client:
            tokens = await login(client, admin_email)
            ids.append(tokens["user"]["id"])
            admin = tokens["accessToken"]
            page = (await client.get("/auth/users", headers=bearer(admin))).json()
            assert [u["email"] for u in page["items"]] == [admin_email]
            assert page["items"][0]["role"] == "ADMIN"
    assert ids[0] == ids[1]


async def test_admin_bootstrap_never_promotes_an_existing_account(
    make_settings: SettingsFactory, start_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    email = unique_email()
    own_password = "the registrant's own password"
    async with start_client(make_settings()) as client:
        user = await register(client, email, password=own_password)

    bootstrap = make_settings(ADMIN_EMAIL=email.upper(), ADMIN_PASSWORD=PASSWORD)
    with caplog.at_level(logging.WARNING, logger="services.auth.service"):
        async with start_client(bootstrap) as client:
            tokens = await login(client, email, own_password)
            assert tokens["user"] == user
            assert tokens["user"]["role"] == "USER"
            wrong = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
            assert wrong.status_code == 401
            verified = await client.get("/auth/verify", headers=bearer(tokens["accessToken"]))
            assert verified.json()["user"]["role"] == "USER"
    assert any(
        "not promoted" in record.getMessage() and record.levelno == logging.WARNING
        for record in caplog.records
    )
