"""Hostile input to the orders API is a 422 naming what is wrong, never a 500: NUL and other
control characters in query parameters, cursors and the JSONB shipping address, numbers out of
range, and unknown body fields (a status change's `notes` is refused, not silently lost)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from services.kit.pagination import encode_cursor
from tests.integration.orders.support import ADDRESS, CatalogueStub
from tests.support import Bearer

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "params",
    [
        {"q": "a\x00b"},
        {"userId": "\x00"},
        {"status": "CREATED\x00"},
        {"cursor": encode_cursor("2024-01-01T00:00:00+00:00", 7)},
        {"cursor": encode_cursor("2024-01-01T00:00:00\x00", str(uuid.uuid4()))},
    ],
)
async def test_list_parameters_with_nul_or_forged_cursors_are_422(
    client: httpx.AsyncClient, admin: Bearer, params: dict[str, str]
) -> None:
    response = await client.get("/orders", params=params, headers=admin.headers)
    assert response.status_code == 422, response.text


async def test_a_shipping_address_with_nul_is_422(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer
) -> None:
    pen = catalogue.add("Pen", "2.00")
    body = {
        "items": [{"productId": pen, "quantity": 1}],
        "shippingAddress": {**ADDRESS, "line1": "1 Main St\x00"},
    }
    response = await client.post("/orders", json=body, headers=user.headers)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["shippingAddress.line1"]


async def _order(client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer) -> str:
    pen = catalogue.add("Pen", "2.00")
    body = {"items": [{"productId": pen, "quantity": 1}], "shippingAddress": ADDRESS}
    response = await client.post("/orders", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    order_id: str = response.json()["id"]
    return order_id


@pytest.mark.parametrize(
    "body",
    [
        {"status": "SHIPPED", "notes": "left at the door"},
        {"status": "SHIPPED", "reason": "a\x00b"},
        {"status": "SHIPPED", "expectedVersion": 2**31},
    ],
)
async def test_a_status_change_with_unknown_fields_or_bad_values_is_422(
    client: httpx.AsyncClient,
    catalogue: CatalogueStub,
    user: Bearer,
    admin: Bearer,
    body: dict[str, Any],
) -> None:
    order_id = await _order(client, catalogue, user)
    response = await client.put(f"/orders/{order_id}/status", json=body, headers=admin.headers)
    assert response.status_code == 422, response.text
    if "notes" in body:
        assert [e["field"] for e in response.json()["errors"]] == ["notes"]


async def test_a_timeline_from_an_overflowing_version_is_422(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer
) -> None:
    order_id = await _order(client, catalogue, user)
    response = await client.get(
        f"/orders/{order_id}/timeline", params={"sinceVersion": 2**31}, headers=user.headers
    )
    assert response.status_code == 422, response.text


async def test_a_cancel_reason_with_nul_is_422(
    client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer
) -> None:
    order_id = await _order(client, catalogue, user)
    response = await client.post(
        f"/orders/{order_id}/cancel", json={"reason": "\x00"}, headers=user.headers
    )
    assert response.status_code == 422, response.text
