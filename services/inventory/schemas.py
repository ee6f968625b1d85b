"""Request and response bodies; JSON is camelCase and money is a decimal string."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

from services.inventory.domain import NewProduct, ProductQuery, decode_cursor
from services.inventory.errors import InvalidParameter
from services.kit.models import (
    CamelModel,
    NoControls,
    NoControlsButWhitespace,
    RequestModel,
    Version,
)

MAX_QUANTITY = 1_000_000_000
MAX_IDS = 100

Sku = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9._-]{1,64}$")]
ProductName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoControls
]
Description = Annotated[str, StringConstraints(max_length=5000), NoControlsButWhitespace]
Price = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
MAX_PRICE = Decimal("9999999999.99")
PriceFilter = Annotated[Decimal, Field(ge=0, le=MAX_PRICE, decimal_places=2)]
"""A price bound in a filter, shaped like a price: `1e999999` and `1e-999999` are 422s, not
database errors, and a cache key never holds a million digits."""
Currency = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{3}$")
]
ImageUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=2048, pattern=r"^https?://\S+$"),
    NoControls,
]
Quantity = Annotated[int, Field(ge=0, le=MAX_QUANTITY)]
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    NoControlsButWhitespace,
]


class ProductCreate(RequestModel):
    sku: Sku
    name: ProductName
    description: Description = ""
    price: Price
    currency: Currency
    image_url: ImageUrl | None = None
    initial_stock: Quantity = 0

    def to_new_product(self) -> NewProduct:
        return NewProduct(
            sku=self.sku,
            name=self.name,
            price=self.price,
            currency=self.currency,
            description=self.description,
            image_url=self.image_url,
            initial_stock=self.initial_stock,
        )


# Fields a PATCH may set to null; any other field sent as null is a mistake, not a request.
_NULLABLE_PATCH_FIELDS = frozenset({"image_url", "version"})


class ProductPatch(RequestModel):
    """A partial update: only the fields present change; `imageUrl: null` clears the image."""

    sku: Sku | None = None
    name: ProductName | None = None
    description: Description | None = None
    price: Price | None = None
    currency: Currency | None = None
    image_url: ImageUrl | None = None
    active: bool | None = None
    version: Version | None = Field(default=None, description="The version being edited.")

    @model_validator(mode="after")
    def _no_null_for_required_fields(self) -> Self:
        for name in self.model_fields_set - _NULLABLE_PATCH_FIELDS:
            if getattr(self, name) is None:
                raise ValueError(f"{to_camel(name)} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The columns this patch sets, by column name."""
        return {name: getattr(self, name) for name in self.model_fields_set - {"version"}}


class StockOut(CamelModel):
    on_hand: int
    reserved: int
    available: int


class ProductOut(CamelModel):
    id: uuid.UUID
    sku: str
    name: str
    description: str
    price: Decimal
    currency: str
    image_url: str | None
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    stock: StockOut


class ProductPage(CamelModel):
    items: list[ProductOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last.")


class StockLevelOut(CamelModel):
    product_id: uuid.UUID
    on_hand: int
    reserved: int
    available: int
    updated_at: datetime


class StockSet(RequestModel):
    on_hand: Quantity
    reason: Reason


class AdjustmentOut(CamelModel):
    id: int
    product_id: uuid.UUID
    old_on_hand: int
    new_on_hand: int
    reason: str
    actor_id: str
    actor_email: str
    created_at: datetime


class AdjustmentPage(CamelModel):
    items: list[AdjustmentOut]


def product_query(
    *,
    q: str | None = None,
    active: bool | None = None,
    currency: str | None = None,
    min_price: Decimal | None = None,
    max_price: Decimal | None = None,
    limit: int = 20,
    cursor: str | None = None,
    ids: str | None = None,
    is_admin: bool = False,
) -> ProductQuery:
    """Normalise the list endpoint's parameters; `InvalidInput` names the bad ones.

    Anonymous callers and users see active products only (`active=false` finds nothing);
    admins see every product unless they filter by `active`. A lookup by id reports every
    listed product, active or not, to anyone (see `ProductQuery`).
    """
    text = " ".join((q or "").split()).lower() or None
    if min_price is not None and max_price is not None and min_price > max_price:
        raise InvalidParameter("minPrice", "must not be greater than maxPrice")
    if ids is not None:
        return ProductQuery(
            q=text,
            active=active,
            currency=currency.upper() if currency else None,
            min_price=min_price,
            max_price=max_price,
            limit=0,
            ids=parse_ids(ids),
            admin_view=is_admin,
        )
    return ProductQuery(
        q=text,
        active=active if active is not None or is_admin else True,
        currency=currency.upper() if currency else None,
        min_price=min_price,
        max_price=max_price,
        limit=limit,
        after=decode_cursor(cursor) if cursor else None,
        admin_view=is_admin,
    )


def parse_ids(raw: str) -> tuple[str, ...]:
    """A comma-separated list of product ids: canonical, unique and sorted."""
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not parts:
        raise InvalidParameter("ids", "must name at least one product id")
    try:
        ids = sorted({str(uuid.UUID(part)) for part in parts})
    except ValueError:
        raise InvalidParameter("ids", "must be comma-separated product ids (UUIDs)") from None
    if len(ids) > MAX_IDS:
        raise InvalidParameter("ids", f"may name at most {MAX_IDS} products")
    return tuple(ids)
