"""Request and response bodies of the orders API (camelCase JSON, money as decimal strings).

A create request carries product ids, quantities and a shipping address only: a price, total
or any other field a client adds is refused with a 422 naming it (prices come from the
inventory catalogue). Every text is `services.kit.models` text: no NUL or other control
character reaches the JSONB shipping address or the timeline.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Self

from pydantic import (
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from services.kit.models import (
    CamelModel,
    NoControls,
    NoControlsButWhitespace,
    RequestModel,
    Version,
)
from services.orders.domain import ADMIN_SETTABLE, Status, merge_quantities

MAX_LINES = 50
MAX_QUANTITY = 1000
MAX_PAGE_SIZE = 100

# ISO 3166-1 alpha-2: the 249 officially assigned codes.
_COUNTRY_CODES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
    BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW
    GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY
    KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV
    MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
    TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM
    ZW
"""
COUNTRY_CODES = frozenset(_COUNTRY_CODES.split())

Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoControls
]
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=500), NoControlsButWhitespace
]
Quantity = Annotated[int, Field(ge=1, le=MAX_QUANTITY, strict=True)]


class OrderItemIn(RequestModel):
    product_id: uuid.UUID
    quantity: Quantity


class ShippingAddress(RequestModel):
    name: Text
    line1: Text
    line2: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), NoControls] | None
    ) = None
    city: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoControls
    ]
    postal_code: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20), NoControls
    ]
    country: str = Field(description="ISO 3166-1 alpha-2 code, such as DE or US")

    @field_validator("line2")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("country")
    @classmethod
    def _iso_country(cls, value: str) -> str:
        code = value.strip().upper()
        if code not in COUNTRY_CODES:
            raise ValueError("must be an ISO 3166-1 alpha-2 country code, such as DE or US")
        return code


class CreateOrderRequest(RequestModel):
    """Lines naming the same product are merged (their quantities added up)."""

    items: list[OrderItemIn] = Field(min_length=1, max_length=MAX_LINES)
    shipping_address: ShippingAddress

    @model_validator(mode="after")
    def _merged_quantities_in_range(self) -> Self:
        for product_id, quantity in self.quantities().items():
            if quantity > MAX_QUANTITY:
                raise ValueError(
                    f"product {product_id} is ordered {quantity} times in all; "
                    f"at most {MAX_QUANTITY} per order"
                )
        return self

    def quantities(self) -> dict[str, int]:
        """Product id -> quantity, with repeated products merged."""
        return merge_quantities((str(item.product_id), item.quantity) for item in self.items)


class StatusChangeRequest(RequestModel):
    status: Status
    reason: Reason | None = None
    expected_version: Version | None = None

    @field_validator("status")
    @classmethod
    def _settable_by_admin(cls, value: Status) -> Status:
        if value not in ADMIN_SETTABLE:
            settable = ", ".join(sorted(ADMIN_SETTABLE))
            raise ValueError(
                f"{value} is decided by inventory, not set by hand; an admin may set {settable}"
            )
        return value


class CancelRequest(RequestModel):
    reason: Reason | None = None
    expected_version: Version | None = None


class OrderLineOut(CamelModel):
    product_id: str
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


class TimelineEntry(CamelModel):
    status: Status
    actor: str
    reason: str | None
    event_id: uuid.UUID | None
    version: int
    at: datetime


class OrderSummary(CamelModel):
    id: uuid.UUID
    user_id: str
    status: Status
    version: int
    total: Decimal
    currency: str
    items: list[OrderLineOut]
    created_at: datetime
    updated_at: datetime


class OrderOut(OrderSummary):
    shipping_address: ShippingAddress
    timeline: list[TimelineEntry]


class OrderPage(CamelModel):
    items: list[OrderSummary]
    next_cursor: str | None
