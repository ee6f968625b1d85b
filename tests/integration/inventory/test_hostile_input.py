"""Hostile input to the catalogue is a 422 naming what is wrong, never a 500: NUL and other
control characters in query parameters, cursors and bodies, numbers out of range in filters and
headers, unknown body fields."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.kit.pagination import encode_cursor
from tests.integration.inventory.support import create_product
from tests.support import Bearer

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


@pytest.mark.parametrize(
    "params",
    [
        {"q": "lamp\x00"},
        {"minPrice": "1e999999"},
        {"maxPrice": "1e-999999"},
        {"minPrice": "NaN"},
        {"cursor": encode_cursor("a\x00", "0b7c0c7e-8d5e-4c59-9d39-3b0f7c8f0a11")},
        {"cursor": encode_cursor("a", 7)},
        {"ids": "\x00"},
    ],
)
async def test_list_filters_out_of_range_are_422(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get("/inventory/products", params=params)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "Lamp\x00"},
        {"description": "a\x00b"},
        {"imageUrl": "https://example.com/\x00.png"},
        {"name": "\x1b[31mred"},
    ],
)
async def test_text_with_nul_in_a_new_product_is_422(
    client: httpx.AsyncClient, admin: Bearer, fields: dict[str, Any]
) -> None:
    body = {"sku": "NUL-1", "name": "Lamp", "price": "1.00", "currency": "USD", **fields}
    response = await client.post("/inventory/products", json=body, headers=admin.headers)
    assert response.status_code == 422, response.text


async def test_a_lone_surrogate_in_a_body_is_422(client: httpx.AsyncClient, admin: Bearer) -> None:
    body = b'{"sku":"S-1","name":"\\ud800","price":"1.00","currency":"USD"}'
    response = await client.post(
        "/inventory/products",
        content=body,
        headers=admin.headers | {"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text


async def test_unknown_fields_are_refused_by_name(client: httpx.AsyncClient, admin: Bearer) -> None:
    product = await create_product(client, admin)
    response = await client.patch(
        f"/inventory/products/{product['id']}",
        json={"name": "Lamp", "colour": "red"},
        headers=admin.headers,
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["colour"]


# Header bytes are read as latin-1: b"\xb2" is "²", which str.isdigit accepts and int refuses.
@pytest.mark.parametrize("if_match", [b'"\xb2"', b'"99999999999"'])
async def test_if_match_out_of_range_is_422(
    client: httpx.AsyncClient, admin: Bearer, if_match: bytes
) -> None:
    product = await create_product(client, admin)
    response = await client.patch(
        f"/inventory/products/{product['id']}",
        json={"name": "Lamp 2"},
        headers=[(b"authorization", f"Bearer {admin.token}".encode()), (b"if-match", if_match)],
    )
    assert response.status_code == 422, response.text


async def test_a_stock_reason_with_nul_is_422(client: httpx.AsyncClient, admin: Bearer) -> None:
    product = await create_product(client, admin)
    response = await client.put(
        f"/inventory/stock/{product['id']}",
        json={"onHand": 3, "reason": "count\x00"},
        headers=admin.headers,
    )
    assert response.status_code == 422, response.text
