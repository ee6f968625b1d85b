"""The orders HTTP API: thin handlers over `OrderService` (see the package README)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from services.kit.errors import InvalidInput
from services.kit.models import INT4_MAX, Text, row_fields
from services.kit.security import CurrentAdmin, CurrentUser
from services.orders.domain import Status
from services.orders.repository import LineRow, OrderRow
from services.orders.schemas import (
    MAX_PAGE_SIZE,
    CancelRequest,
    CreateOrderRequest,
    OrderOut,
    OrderPage,
    OrderSummary,
    StatusChangeRequest,
    TimelineEntry,
)
from services.orders.service import Created, OrderService, OrderView

router = APIRouter(prefix="/orders", tags=["orders"])
REPLAYED_HEADER = "Idempotent-Replayed"
# An Idempotency-Key: 1 to 255 visible ASCII characters. The header's declaration and the
# create's lean route (create_route.py) check it from these.
_KEY_CHARACTER = r"[\x21-\x7e]"
_KEY_MAX_LENGTH = 255
IDEMPOTENCY_KEY_PATTERN = re.compile(f"{_KEY_CHARACTER}{{1,{_KEY_MAX_LENGTH}}}")


async def _service(request: Request) -> OrderService:
    service: OrderService = request.app.state.orders
    return service


Orders = Annotated[OrderService, Depends(_service)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=_KEY_MAX_LENGTH,
        pattern=f"^{_KEY_CHARACTER}+$",
    ),
]


@router.post("", status_code=status.HTTP_201_CREATED)
@router.post("/create", status_code=status.HTTP_201_CREATED)
async def create_order(
    body: CreateOrderRequest,
    principal: CurrentUser,
    orders: Orders,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> OrderOut:
    """Place an order: 201 when created, 200 (with Idempotent-Replayed: true) for a retry."""
    # A create with a JSON body this endpoint would accept is served by `CreateRoute`
    # (create_route.py) without FastAPI's per-request work; this endpoint serves the others.
    response.status_code, headers, order = created_answer(
        await orders.create(principal, body, idempotency_key)
    )
    response.headers.update(headers)
    return order


def created_answer(created: Created) -> tuple[int, dict[str, str], OrderOut]:
    """A create's answer: its status, its headers and the order."""
    headers = {"Location": f"/orders/{created.view.order.id}"}
    if created.replayed:
        headers[REPLAYED_HEADER] = "true"
    code = status.HTTP_200_OK if created.replayed else status.HTTP_201_CREATED
    return code, headers, _order_out(created.view)


@router.get("")
async def list_orders(
    principal: CurrentUser,
    orders: Orders,
    status_: Annotated[list[Text], Query(alias="status", max_length=20)] = [],  # noqa: B006 - FastAPI copies it
    created_from: Annotated[datetime | None, Query(alias="from")] = None,
    created_to: Annotated[datetime | None, Query(alias="to")] = None,
    q: Annotated[Text | None, Query(max_length=100)] = None,
    user_id: Annotated[Text | None, Query(alias="userId", max_length=64)] = None,
    cursor: Annotated[Text | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
) -> OrderPage:
    """Newest first; `status` repeats or takes a comma-separated list."""
    page = await orders.list_orders(
        principal,
        statuses=_statuses(status_),
        created_from=created_from,
        created_to=created_to,
        text=q.strip() if q else None,
        user_id=user_id,
        cursor=cursor,
        limit=limit,
    )
    return OrderPage(
        items=[_summary(order, lines) for order, lines in page.orders],
        next_cursor=page.next_cursor,
    )


@router.get("/{order_id}")
async def get_order(order_id: uuid.UUID, principal: CurrentUser, orders: Orders) -> OrderOut:
    return _order_out(await orders.get(principal, order_id))


@router.get("/{order_id}/timeline")
async def get_timeline(
    order_id: uuid.UUID,
    principal: CurrentUser,
    orders: Orders,
    since_version: Annotated[int, Query(alias="sinceVersion", ge=0, le=INT4_MAX)] = 0,
) -> list[TimelineEntry]:
    """The entries newer than `sinceVersion`: what a reconnecting client missed."""
    entries = await orders.timeline(principal, order_id, since_version)
    return [TimelineEntry.model_validate(row) for row in entries]


@router.put("/{order_id}/status")
async def set_status(
    order_id: uuid.UUID, body: StatusChangeRequest, principal: CurrentAdmin, orders: Orders
) -> OrderOut:
    view = await orders.set_status(
        principal,
        order_id,
        body.status,
        reason=body.reason or None,
        expected_version=body.expected_version,
    )
    return _order_out(view)


@router.post("/{order_id}/cancel")
async def cancel_order(
    order_id: uuid.UUID,
    principal: CurrentUser,
    orders: Orders,
    body: CancelRequest | None = None,
) -> OrderOut:
    body = body or CancelRequest()
    view = await orders.cancel(
        principal, order_id, reason=body.reason or None, expected_version=body.expected_version
    )
    return _order_out(view)


def _statuses(values: list[str]) -> list[Status]:
    wanted = [part.strip().upper() for value in values for part in value.split(",")]
    try:
        return [Status(value) for value in wanted if value]
    except ValueError as exc:
        raise InvalidInput(f"status must be among {', '.join(Status)}.", field="status") from exc


def _summary(order: OrderRow, lines: list[LineRow]) -> OrderSummary:
    return OrderSummary.model_validate({**row_fields(order), "items": lines})


def _order_out(view: OrderView) -> OrderOut:
    return OrderOut.model_validate(
        {**row_fields(view.order), "items": view.lines, "timeline": view.timeline}
    )
