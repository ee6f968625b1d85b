"""Hostile input to auth is a 422 naming what is wrong, never a 500: control characters in a
name, refresh tokens that are not tokens, offsets past any page, unknown body fields."""

from __future__ import annotations

import httpx
import pytest

from services.auth.settings import Settings
from tests.integration.auth.conftest import SettingsFactory
from tests.integration.auth.support import PASSWORD, bearer, login, unique_email

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture
def admin_email() -> str:
    return unique_email("admin")


@pytest.fixture
def settings(make_settings: SettingsFactory, admin_email: str) -> Settings:
    return make_settings(ADMIN_EMAIL=admin_email, ADMIN_PASSWORD=PASSWORD)


async def test_a_name_with_nul_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register",
        json={"email": unique_email(), "password": PASSWORD, "name": "Ada\x00"},
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["name"]


@pytest.mark.parametrize("path", ["/auth/refresh", "/auth/logout"])
async def test_a_refresh_token_with_nul_is_422(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(path, json={"refreshToken": "abc\x00def"})
    assert response.status_code == 422, response.text


async def test_an_offset_past_any_page_is_422(client: httpx.AsyncClient, admin_email: str) -> None:
    token = (await login(client, admin_email))["accessToken"]
    for offset in (10**20, 100_001):
        response = await client.get("/auth/users", params={"offset": offset}, headers=bearer(token))
        assert response.status_code == 422, response.text
    assert (await client.get("/auth/users", headers=bearer(token))).status_code == 200


async def test_unknown_fields_in_a_login_are_refused_by_name(
    client: httpx.AsyncClient, admin_email: str
) -> None:
    response = await client.post(
        "/auth/login", json={"email": admin_email, "password": PASSWORD, "remember": True}
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["remember"]
