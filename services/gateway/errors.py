"""The gateway's own refusals; the kit's errors cover the rest (401, 403, 404, 502, 504)."""

from __future__ import annotations

from services.kit.errors import DomainError, RateLimited


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload-too-large"


class InvalidPath(DomainError):
    status = 400
    code = "invalid-path"


class Overloaded(RateLimited):
    """The upstream's gate is full (admission.py): nothing was forwarded; retry later."""

    status = 503
    code = "overloaded"
