"""The inventory HTTP API: public catalogue and stock reads, admin edits (see README.md)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from services.inventory.schemas import (
    AdjustmentPage,
    PriceFilter,
    ProductCreate,
    ProductOut,
    ProductPage,
    ProductPatch,
    StockLevelOut,
    StockSet,
    product_query,
)
from services.inventory.service import InventoryService
from services.kit.cache import etag_matches, weak_etag
from services.kit.errors import InvalidInput
from services.kit.models import INT4_MAX, Text
from services.kit.security import CurrentAdmin, authenticate
from services.kit.tokens import Principal

router = APIRouter(prefix="/inventory", tags=["inventory"])


async def _inventory(request: Request) -> InventoryService:
    service: InventoryService = request.app.state.inventory
    return service


async def _optional_principal(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal | None:
    """The caller of a public endpoint: anonymous without a token, refused with a bad one."""
    if authorization is None:
        return None
    return await authenticate(request.app.state, authorization)


Inventory = Annotated[InventoryService, Depends(_inventory)]
OptionalCaller = Annotated[Principal | None, Depends(_optional_principal)]


@router.get("/products", response_model=ProductPage)
async def list_products(
    inventory: Inventory,
    caller: OptionalCaller,
    q: Annotated[Text | None, Query(max_length=100)] = None,
    active: bool | None = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Za-z]{3}$")] = None,
    min_price: Annotated[PriceFilter | None, Query(alias="minPrice")] = None,
    max_price: Annotated[PriceFilter | None, Query(alias="maxPrice")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[Text | None, Query(max_length=1000)] = None,
    ids: Annotated[Text | None, Query(max_length=4000)] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The page, tagged with a weak ETag: sent back in `If-None-Match`, it is answered
    304 Not Modified while the page has not changed."""
    # `Cache-Control: no-cache` lets a browser keep the page but ask again each time (a 304
    # costs no body); the gateway keeps only pages that carry the tag (gateway/products.py).
    query = product_query(
        q=q,
        active=active,
        currency=currency,
        min_price=min_price,
        max_price=max_price,
        limit=limit,
        cursor=cursor,
        ids=ids,
        is_admin=_is_admin(caller),
    )
    body = (await inventory.list_products(query)).encode()
    etag = weak_etag(body)
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Authorization"}
    if if_none_match is not None and etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)


@router.get("/products/{product_id}", response_model=ProductOut)
async def get_product(
    product_id: str, inventory: Inventory, caller: OptionalCaller, response: Response
) -> ProductOut:
    product = await inventory.get_product(product_id, admin_view=_is_admin(caller))
    response.headers["ETag"] = _etag(product.version)
    return product


@router.post("/products", response_model=ProductOut, status_code=201)
async def create_product(
    body: ProductCreate, admin: CurrentAdmin, inventory: Inventory, response: Response
) -> ProductOut:
    product = await inventory.create_product(body, admin)
    response.headers["Location"] = f"/inventory/products/{product.id}"
    response.headers["ETag"] = _etag(product.version)
    return product


@router.patch("/products/{product_id}", response_model=ProductOut)
async def update_product(
    product_id: str,
    body: ProductPatch,
    admin: CurrentAdmin,
    inventory: Inventory,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> ProductOut:
    product = await inventory.update_product(product_id, body, _expected_version(if_match))
    response.headers["ETag"] = _etag(product.version)
    return product


@router.get("/stock/{product_id}", response_model=StockLevelOut)
async def get_stock(product_id: str, inventory: Inventory) -> StockLevelOut:
    return await inventory.get_stock(product_id)


@router.put("/stock/{product_id}", response_model=StockLevelOut)
async def set_stock(
    product_id: str, body: StockSet, admin: CurrentAdmin, inventory: Inventory
) -> StockLevelOut:
    return await inventory.set_stock(product_id, body.on_hand, body.reason, admin)


@router.get("/stock/{product_id}/adjustments", response_model=AdjustmentPage)
async def list_adjustments(
    product_id: str, admin: CurrentAdmin, inventory: Inventory
) -> AdjustmentPage:
    return AdjustmentPage(items=await inventory.list_adjustments(product_id))


def _is_admin(caller: Principal | None) -> bool:
    return caller is not None and caller.is_admin


def _etag(version: int) -> str:
    return f'"{version}"'


_VERSION_TAG = re.compile(r'(?:W/)?"?([0-9]{1,10})"?', re.ASCII)


def _expected_version(if_match: str | None) -> int | None:
    """The version an `If-Match` header names (`"3"`, `W/"3"` or `3`); None for none or `*`.

    ASCII digits only: `str.isdigit` also accepts `²` or `٣`, which `int` then refuses or reads.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    match = _VERSION_TAG.fullmatch(if_match.strip())
    if match is None or int(match[1]) > INT4_MAX:
        raise InvalidInput("If-Match must name a product version, as in the ETag header.")
    return int(match[1])
