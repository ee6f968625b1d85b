"""Hostile input to the notifications API is a 422, never a 500: forged cursors (control
characters, values of the wrong type) and unknown preference fields."""

from __future__ import annotations

import uuid

import httpx
import pytest

from services.kit.pagination import encode_cursor
from tests.support import Bearer

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


@pytest.mark.parametrize(
    "cursor",
    [
        encode_cursor("2024-01-01T00:00:00+00:00", 7),
        encode_cursor("2024-01-01T00:00:00\x00", str(uuid.uuid4())),
        "\x00",
    ],
)
@pytest.mark.parametrize("path", ["/notifications", "/notifications/dlq"])
async def test_a_forged_cursor_is_422(
    client: httpx.AsyncClient, admin: Bearer, path: str, cursor: str
) -> None:
    response = await client.get(path, params={"cursor": cursor}, headers=admin.headers)
    assert response.status_code == 422, response.text


async def test_an_unknown_preference_field_is_refused_by_name(
    client: httpx.AsyncClient, user: Bearer
) -> None:
    response = await client.put(
        "/notifications/preferences",
        json={"channels": {}, "pager": "+4930123456"},
        headers=user.headers,
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["pager"]
