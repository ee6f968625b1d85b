"""The orders service's pure rules: the status machine, pricing, request hashing and cursors.

Nothing here does I/O, so every rule is unit-tested directly.

The status machine is one table, `TRANSITIONS`: for each status, the statuses an order may move
to and who may move it there. Three kinds of actor change an order:

- `inventory` (through Kafka): CONFIRMED or FAILED from CREATED, and CANCELLED when a
  reservation expires;
- `admin` (PUT /orders/{id}/status or POST /orders/{id}/cancel): SHIPPED, DELIVERED, CANCELLED;
- `owner` (POST /orders/{id}/cancel): CANCELLED while CREATED or CONFIRMED.

CONFIRMED and FAILED are inventory's answer to a reservation, so an admin cannot set them: an
order confirmed by hand would ship goods nobody reserved.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import orjson

from services.kit import pagination
from services.orders.errors import (
    CurrencyMismatch,
    HoldingLimitReached,
    IllegalTransition,
    InvalidCursor,
    ProductUnavailable,
    TotalTooLarge,
)


class Status(StrEnum):
    CREATED = "CREATED"
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


class Actor(StrEnum):
    INVENTORY = "inventory"
    ADMIN = "admin"
    OWNER = "owner"


INVENTORY, ADMIN, OWNER = Actor.INVENTORY, Actor.ADMIN, Actor.OWNER

TRANSITIONS: Mapping[Status, Mapping[Status, frozenset[Actor]]] = {
    Status.CREATED: {
        Status.CONFIRMED: frozenset({INVENTORY}),
        Status.FAILED: frozenset({INVENTORY}),
        Status.CANCELLED: frozenset({OWNER, ADMIN, INVENTORY}),
    },
    Status.CONFIRMED: {
        Status.SHIPPED: frozenset({ADMIN}),
        Status.CANCELLED: frozenset({OWNER, ADMIN, INVENTORY}),
    },
    Status.SHIPPED: {Status.DELIVERED: frozenset({ADMIN})},
    Status.DELIVERED: {},
    Status.FAILED: {},
    Status.CANCELLED: {},
}
FINAL_STATUSES = frozenset(status for status, moves in TRANSITIONS.items() if not moves)
ADMIN_SETTABLE = frozenset(
    target for moves in TRANSITIONS.values() for target, actors in moves.items() if ADMIN in actors
)


OPEN_STATUSES = frozenset({Status.CREATED, Status.CONFIRMED})
"""An order waiting for stock or holding it: what the per-user holding limits count."""


@dataclass(frozen=True, slots=True)
class HoldingLimits:
    """How much one user may hold in open orders; None: no limit."""

    open_orders: int | None = None
    units_per_product: int | None = None

    @property
    def enforced(self) -> bool:
        """Whether any limit is in force (a create then reads what the user holds)."""
        return self.open_orders is not None or self.units_per_product is not None


@dataclass(frozen=True, slots=True)
class Holdings:
    """What one user's open orders hold: how many orders, and units per product."""

    open_orders: int
    units: dict[str, int]


def admit_within_limits(
    limits: HoldingLimits,
    creates: Sequence[tuple[str, Mapping[str, int]]],
    holdings: Mapping[str, Holdings],
) -> list[HoldingLimitReached | None]:
    """For creates placed together, each a user and the units it asks per product, in their
    order: None for a create the limits admit, the refusal for one they do not.

    Each create is checked as if the ones before it had been placed alone: an admitted create
    counts toward its user's holdings for the next (one more open order, its units), a refused
    one does not. `holdings` is what each user held before the group (no entry: nothing).
    """
    held = {user_id: (h.open_orders, dict(h.units)) for user_id, h in holdings.items()}
    outcomes: list[HoldingLimitReached | None] = []
    for user_id, requested in creates:
        open_orders, units = held.get(user_id, (0, {}))
        try:
            check_holding_limits(
                limits, open_orders=open_orders, held_units=units, requested=requested
            )
        except HoldingLimitReached as refused:
            outcomes.append(refused)
            continue
        for product_id, quantity in requested.items():
            units[product_id] = units.get(product_id, 0) + quantity
        held[user_id] = (open_orders + 1, units)
        outcomes.append(None)
    return outcomes


def check_holding_limits(
    limits: HoldingLimits,
    *,
    open_orders: int,
    held_units: Mapping[str, int],
    requested: Mapping[str, int],
) -> None:
    """Refuse a new order that would take a user past their limits (`HoldingLimitReached`).

    Without them one user could reserve a product's whole stock (or all of the catalogue) with
    orders they never pay for, until each reservation expires.
    """
    if limits.open_orders is not None and open_orders >= limits.open_orders:
        raise HoldingLimitReached(
            f"You have {open_orders} open orders, the most one account may have; "
            "wait until one is shipped or cancel one.",
            limit=limits.open_orders,
            open_orders=open_orders,
        )
    if limits.units_per_product is None:
        return
    over = {
        product_id: held_units.get(product_id, 0) + quantity
        for product_id, quantity in requested.items()
        if held_units.get(product_id, 0) + quantity > limits.units_per_product
    }
    if over:
        named = ", ".join(f"{product_id} ({units})" for product_id, units in sorted(over.items()))
        raise HoldingLimitReached(
            f"One account may hold at most {limits.units_per_product} units of a product in "
            f"open orders; this order would take you to: {named}.",
            limit=limits.units_per_product,
            products=sorted(over),
        )


def allowed_next(current: Status, actor: Actor) -> list[Status]:
    """The statuses `actor` may move an order in `current` to, in table order."""
    return [target for target, actors in TRANSITIONS[current].items() if actor in actors]


def sources_of(target: Status, actor: Actor) -> list[Status]:
    """The statuses from which `actor` may move an order to `target`."""
    return [current for current, moves in TRANSITIONS.items() if actor in moves.get(target, ())]


def can_transition(current: Status, target: Status, actor: Actor) -> bool:
    return actor in TRANSITIONS[current].get(target, frozenset())


def check_transition(current: Status, target: Status, actor: Actor) -> None:
    """Raise `IllegalTransition` (409, naming the allowed moves) unless the move is legal."""
    if not can_transition(current, target, actor):
        raise IllegalTransition(current, target, [str(s) for s in allowed_next(current, actor)])


# --- pricing -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CatalogueProduct:
    """What the inventory service's catalogue says about a product."""

    id: str
    sku: str
    name: str
    price: Decimal
    currency: str
    active: bool


@dataclass(frozen=True, slots=True)
class PricedLine:
    product_id: str
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


@dataclass(frozen=True, slots=True)
class PricedOrder:
    lines: tuple[PricedLine, ...]
    total: Decimal
    currency: str


CENT = Decimal("0.01")
MAX_TOTAL = Decimal("9999999999.99")  # what numeric(12,2) holds


def price_order(
    quantities: Mapping[str, int], catalogue: Mapping[str, CatalogueProduct]
) -> PricedOrder:
    """Price the requested quantities from the catalogue alone.

    Every product must be known and active, and all must share one currency (an order has one
    total). The client's own idea of prices never gets here.
    """
    unknown = [pid for pid in quantities if pid not in catalogue]
    inactive = [pid for pid in quantities if pid in catalogue and not catalogue[pid].active]
    if unknown or inactive:
        raise ProductUnavailable(unknown=unknown, inactive=inactive)
    currencies = sorted({catalogue[pid].currency for pid in quantities})
    if len(currencies) != 1:
        raise CurrencyMismatch(currencies)
    lines = []
    for product_id, quantity in quantities.items():
        product = catalogue[product_id]
        unit_price = product.price.quantize(CENT)
        lines.append(
            PricedLine(
                product_id=product_id,
                sku=product.sku,
                name=product.name,
                quantity=quantity,
                unit_price=unit_price,
                line_total=(unit_price * quantity).quantize(CENT),
            )
        )
    total = sum((line.line_total for line in lines), Decimal("0.00"))
    if total > MAX_TOTAL:
        raise TotalTooLarge(total, currencies[0])
    return PricedOrder(lines=tuple(lines), total=total, currency=currencies[0])


def merge_quantities(items: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Sum the quantities of repeated products, keeping the order of first appearance."""
    merged: dict[str, int] = {}
    for product_id, quantity in items:
        merged[product_id] = merged.get(product_id, 0) + quantity
    return merged


# --- idempotency -------------------------------------------------------------------------


def request_fingerprint(quantities: Mapping[str, int], shipping_address: Mapping[str, Any]) -> str:
    """A stable hash of what a create request asks for.

    Computed on the normalised request (duplicates merged, lines sorted, ignored fields gone),
    so a retry that repeats the request with its lines in another order, or with a client-side
    price that is ignored anyway, is recognised as the same request.
    """
    canonical = {
        "items": sorted(quantities.items()),
        "shippingAddress": {k: v for k, v in sorted(shipping_address.items()) if v is not None},
    }
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


# --- cursors -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cursor:
    """The position after the last order of a page: orders are sorted by (created_at, id) desc."""

    created_at: datetime
    id: uuid.UUID


def encode_cursor(cursor: Cursor) -> str:
    return pagination.encode_cursor(cursor.created_at.isoformat(), str(cursor.id))


def decode_cursor(value: str) -> Cursor:
    """The cursor of a `nextCursor` value; `InvalidCursor` (422) for anything else."""
    try:
        return pagination.decode_cursor(value, _cursor)
    except pagination.MalformedCursor as exc:
        raise InvalidCursor() from exc


def _cursor(created_at: str, order_id: object) -> Cursor:
    # The values are whatever the JSON held: fromisoformat refuses a non-string with TypeError,
    # while uuid.UUID would fail on one with AttributeError, so it gets a string.
    parsed = datetime.fromisoformat(created_at)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return Cursor(created_at=parsed, id=uuid.UUID(str(order_id)))
