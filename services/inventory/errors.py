"""The inventory service's domain errors; each carries its HTTP status (see services.kit.errors)."""

from __future__ import annotations

from services.kit.errors import Conflict, DomainError, InvalidInput, NotFound


class ProductNotFound(NotFound):
    def __init__(self, product_id: str) -> None:
        super().__init__(f"There is no product {product_id}.")


class SkuTaken(Conflict):
    code = "sku-taken"

    def __init__(self, sku: str) -> None:
        super().__init__(f"A product with sku {sku!r} already exists.", sku=sku)


class VersionMismatch(Conflict):
    """The body's `version` is not the product's current one."""

    code = "version-mismatch"

    def __init__(self, current: int) -> None:
        super().__init__(
            f"The product has changed (now version {current}); reload it and retry.",
            currentVersion=current,
        )


class PreconditionFailed(DomainError):
    """The `If-Match` header names a version the product no longer has."""

    status = 412
    code = "precondition-failed"

    def __init__(self, current: int) -> None:
        super().__init__(
            f"The product has changed (now version {current}); reload it and retry.",
            currentVersion=current,
        )


class BelowReserved(Conflict):
    code = "below-reserved"

    def __init__(self, on_hand: int, reserved: int) -> None:
        super().__init__(
            f"On hand cannot be {on_hand}: {reserved} units are reserved for orders.",
            reserved=reserved,
        )


class InvalidParameter(InvalidInput):
    """A query parameter that cannot be used, reported like a validation error of that field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            "The request is not valid.",
            errors=[{"field": field, "message": f"{field} {message}", "type": "value_error"}],
        )
