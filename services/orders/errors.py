"""The orders service's domain errors; each carries its HTTP status (see services.kit.errors)."""

from __future__ import annotations

from services.kit.errors import Conflict, DomainError, InvalidInput, NotFound


class OrderNotFound(NotFound):
    """Also the answer for someone else's order: whether it exists is nobody else's business."""

    def __init__(self, order_id: object) -> None:
        super().__init__(f"There is no order {order_id}.")


class IllegalTransition(Conflict):
    code = "illegal-transition"

    def __init__(self, current: str, target: str, allowed: list[str]) -> None:
        moves = ", ".join(allowed) if allowed else "none"
        super().__init__(
            f"An order in status {current} cannot move to {target}; allowed: {moves}.",
            current=current,
            requested=target,
            allowed=allowed,
        )


class VersionMismatch(Conflict):
    code = "version-mismatch"

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(
            f"The order is at version {current}, not {expected}; reload it and retry.",
            expectedVersion=expected,
            currentVersion=current,
        )


class HoldingLimitReached(Conflict):
    """A user's open orders already hold as much as one account may (see the settings)."""

    code = "holding-limit"


class ProductUnavailable(InvalidInput):
    code = "product-unavailable"

    def __init__(self, *, unknown: list[str], inactive: list[str]) -> None:
        parts = []
        if unknown:
            parts.append("unknown products: " + ", ".join(unknown))
        if inactive:
            parts.append("products no longer sold: " + ", ".join(inactive))
        super().__init__(
            "The order cannot be placed: " + "; ".join(parts) + ".",
            unknownProducts=unknown,
            inactiveProducts=inactive,
        )


class CurrencyMismatch(InvalidInput):
    code = "currency-mismatch"

    def __init__(self, currencies: list[str]) -> None:
        super().__init__(
            "All products of one order must share a currency; this order mixes "
            + ", ".join(currencies)
            + ".",
            currencies=currencies,
        )


class TotalTooLarge(InvalidInput):
    code = "total-too-large"

    def __init__(self, total: object, currency: str) -> None:
        super().__init__(
            f"An order total of {total} {currency} is more than one order may hold; "
            "split it into several orders."
        )


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency-key-reused"

    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was already used for a different request; "
            "use a new key for a new order."
        )


class InvalidCursor(InvalidInput):
    code = "invalid-cursor"

    def __init__(self) -> None:
        super().__init__("The cursor is not valid; start again without one.")


class InventoryUnavailable(DomainError):
    """The catalogue could not be read, so no order can be priced right now."""

    status = 503
    code = "inventory-unavailable"

    def __init__(
        self, detail: str = "The product catalogue is unavailable; retry shortly."
    ) -> None:
        super().__init__(detail)
