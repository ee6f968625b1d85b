"""The inventory service's pure rules: reserving stock, the product list query and its cursor.

Nothing here does I/O, so every rule is unit-tested directly.

The reservation rule is all or nothing: `merge_lines` turns an order's lines into one requested
quantity per product (in product id order, the lock order), and `decide_reservation` judges
them against the locked stock levels; no refusal means every line is reserved.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.inventory.errors import InvalidParameter
from services.kit import pagination
from services.kit.order_events import LineRefusal, OrderLine

UNKNOWN_PRODUCT = "unknown-product"
INACTIVE_PRODUCT = "inactive-product"
INSUFFICIENT_STOCK = "insufficient-stock"
INVALID_QUANTITY = "invalid-quantity"


# --- product ids -----------------------------------------------------------------------------


def parse_product_id(raw: str) -> str | None:
    """A product id in the database's spelling (a canonical UUID); None if it is not a UUID."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


def canonical_product_id(raw: str) -> str:
    """A product id in the database's spelling; anything that is not a UUID stays as sent."""
    return parse_product_id(raw) or raw


# --- the reservation rule --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestedLine:
    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class StockLevel:
    available: int
    active: bool


def merge_lines(items: Iterable[OrderLine]) -> list[RequestedLine]:
    """One requested quantity per product, in product id order (the lock order)."""
    totals: dict[str, int] = {}
    for item in items:
        product_id = canonical_product_id(item.product_id)
        totals[product_id] = totals.get(product_id, 0) + item.quantity
    return [RequestedLine(pid, qty) for pid, qty in sorted(totals.items())]


def decide_reservation(
    lines: Sequence[RequestedLine], stock: Mapping[str, StockLevel]
) -> list[LineRefusal]:
    """The refusals for an order's lines given their stock; none means reserve every line."""
    refusals = []
    for line in lines:
        level = stock.get(line.product_id)
        reason: str | None = None
        if line.quantity <= 0:
            reason = INVALID_QUANTITY
        elif level is None:
            reason = UNKNOWN_PRODUCT
        elif not level.active:
            reason = INACTIVE_PRODUCT
        elif level.available < line.quantity:
            reason = INSUFFICIENT_STOCK
        if reason is not None:
            refusals.append(
                LineRefusal(
                    product_id=line.product_id,
                    requested=line.quantity,
                    available=max(level.available, 0) if level is not None else 0,
                    reason=reason,
                )
            )
    if not lines:
        refusals.append(
            LineRefusal(product_id="", requested=0, available=0, reason=INVALID_QUANTITY)
        )
    return refusals


def refusal_summary(refusals: Sequence[LineRefusal], line_count: int) -> str:
    """A one-line reason for the whole order, e.g. `2 of 3 lines refused: insufficient-stock`."""
    reasons = ", ".join(sorted({refusal.reason for refusal in refusals}))
    return f"{len(refusals)} of {max(line_count, len(refusals))} lines refused: {reasons}"


# --- the catalogue ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewProduct:
    """A product to add to the catalogue, with the units it starts with."""

    sku: str
    name: str
    price: Decimal
    currency: str
    description: str = ""
    image_url: str | None = None
    initial_stock: int = 0


@dataclass(frozen=True, slots=True)
class ProductQuery:
    """A normalised product list query: equal queries are equal values (and share a cache key).

    `admin_view` is whose view it is. The public view (anonymous callers and users) lists
    active products only, whatever `active` asks: `active=false` finds nothing. The admin's view
    lists every product unless `active` filters. Being part of the value, it is part of the
    cache key, so neither view is ever served from the other's entries.

    With `ids` it is a batch lookup: every listed product, active or not unless `active` says
    otherwise, in one page (`limit` and `after` do not apply), in either view: the orders
    service looks products up without a token and must tell a deactivated product from an
    unknown one. `after` is the (name, id) of the previous page's last product: the list is
    ordered by name, then id.
    """

    q: str | None = None
    active: bool | None = True
    currency: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    limit: int = 20
    after: tuple[str, str] | None = None
    ids: tuple[str, ...] | None = None
    admin_view: bool = False

    @property
    def active_only(self) -> bool:
        """Whether deactivated products are left out whatever `active` says."""
        return not self.admin_view and self.ids is None

    def canonical(self) -> dict[str, Any]:
        """The query as plain JSON values, one spelling per meaning."""
        return {
            "q": self.q,
            "active": self.active,
            "currency": self.currency,
            "minPrice": _plain_decimal(self.min_price),
            "maxPrice": _plain_decimal(self.max_price),
            "limit": self.limit,
            "after": list(self.after) if self.after else None,
            "ids": list(self.ids) if self.ids is not None else None,
            "adminView": self.admin_view,
        }


def encode_cursor(name: str, product_id: str) -> str:
    """The opaque cursor of the page that starts after product (`name`, `product_id`)."""
    return pagination.encode_cursor(name, product_id)


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The (name, id) a cursor of `encode_cursor` holds; `InvalidParameter` (422) otherwise."""
    try:
        return pagination.decode_cursor(cursor, _position)
    except pagination.MalformedCursor:
        raise InvalidParameter("cursor", "is not a cursor this service returned") from None


def _position(name: object, product_id: object) -> tuple[str, str]:
    return str(name), str(uuid.UUID(str(product_id)))


def _plain_decimal(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")
