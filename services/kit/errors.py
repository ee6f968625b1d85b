"""Domain errors carry their HTTP status; one handler renders them as RFC 9457 problem+json.

The last line against input the schemas let through: a value PostgreSQL refuses (psycopg's
`DataError`: a number out of range, a NUL byte, text that does not fit the column) or text
that cannot be encoded at all (a lone surrogate) is the client's, so it is answered 422
`invalid-input`, not 500, and logged as a warning so the schema that should have refused it
gets fixed. The kit's input types (`services.kit.models`) are the first line.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class DomainError(Exception):
    """An expected failure of a domain rule, rendered as problem details."""

    status: int = 400
    code: str = "bad-request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase


class NotFound(DomainError):
    status = 404
    code = "not-found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class InvalidInput(DomainError):
    status = 422
    code = "invalid-input"


class RateLimited(DomainError):
    status = 429
    code = "rate-limited"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after


class UpstreamUnavailable(DomainError):
    status = 502
    code = "upstream-unavailable"


class UpstreamTimeout(DomainError):
    status = 504
    code = "upstream-timeout"


def problem(
    status: int,
    detail: str,
    *,
    code: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build a problem+json response."""
    body: dict[str, Any] = {
        "type": f"https://realtimeorder.io/problems/{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def domain_problem(exc: DomainError, instance: str) -> JSONResponse:
    """The problem+json answer to a domain error, with the headers its status calls for; an ASGI
    app too, for middleware that answers before the app's handlers."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    return problem(
        exc.status,
        exc.detail,
        code=exc.code,
        instance=instance,
        headers=headers or None,
        **exc.extra,
    )


def too_large(limit: int, instance: str | None) -> JSONResponse:
    """The 413 answer to a request body over `limit` bytes."""
    return problem(
        413,
        f"The request body exceeds {limit} bytes.",
        code="payload-too-large",
        instance=instance,
        limit=limit,
    )


def problem_for(exc: Exception, instance: str) -> JSONResponse:
    """The answer to an error a request raised, as the app's handlers give it: a domain error's
    problem, 422 for invalid input, an HTTP error's status, and 500 (logged with its traceback)
    for anything else."""
    if isinstance(exc, DomainError):
        return domain_problem(exc, instance)
    if isinstance(exc, RequestValidationError):
        errors = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                "message": err.get("msg", "invalid"),
                "type": err.get("type", "value_error"),
            }
            for err in exc.errors()
        ]
        return problem(
            422,
            "The request is not valid.",
            code="invalid-input",
            instance=instance,
            errors=errors,
        )
    if isinstance(exc, StarletteHTTPException):
        return problem(
            exc.status_code,
            str(exc.detail),
            code=HTTPStatus(exc.status_code).phrase.lower().replace(" ", "-"),
            instance=instance,
            headers=dict(exc.headers) if exc.headers else None,
        )
    if isinstance(exc, (psycopg.DataError, UnicodeEncodeError)):
        log.warning(
            "input refused by the database or the encoder",
            extra={"path": instance, "error": type(exc).__name__},
        )
        return problem(
            422,
            "The request holds a value that cannot be stored or compared "
            "(out of range, or a character such as NUL).",
            code="invalid-input",
            instance=instance,
        )
    log.exception("unhandled error", extra={"path": instance}, exc_info=exc)
    return problem(500, "An unexpected error occurred.", code="internal", instance=instance)


def install_error_handlers(app: FastAPI) -> None:
    """Render domain errors, validation errors, HTTP errors and the rest as problem+json
    (`problem_for`)."""

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        return problem_for(exc, request.url.path)

    for handled in (
        DomainError,
        RequestValidationError,
        StarletteHTTPException,
        psycopg.DataError,
        UnicodeEncodeError,
        Exception,
    ):
        app.add_exception_handler(handled, on_error)
