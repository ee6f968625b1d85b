"""POST /orders served ahead of the app's middleware and FastAPI's per-request machinery,
answering as its route does.

The create is the one request every order makes of this service. FastAPI spent about 110 µs of
CPU on it beyond the work itself: resolving the endpoint's dependencies, reading the
parameters' annotations, validating the body, then validating the answer again against the
response model before serialising it; and the app's middleware and router, each with its
wrapper around `send`, about as much again. Served through the app with the service stubbed, a
create took 164 µs of CPU through the endpoint and 60 µs through a route in front of it, inside
the middleware; this front route (kit/front.py) serves it ahead of the middleware too, with the
request id, metrics, span, body limit and error rendering the kit gives every request.

`CreateRoute` takes a POST to either path of the create (`/orders` and the seed's
`/orders/create`, endpoints.py), counted and traced under that path, the endpoint's route
template. It serves a request with a JSON body (`Content-Type: application/json`) that
`CreateOrderRequest` accepts and, if it sends one, a well-formed `Idempotency-Key`. Anything
else, an invalid body, a missing or other content type or a malformed key, it leaves to the
app with the body it read, and the endpoint serves it: every refusal is FastAPI's own, word for
word. After the body is accepted the route does what the endpoint does: it authenticates the
caller (`kit/security.py`; a refusal is a `DomainError`, rendered as the endpoint's would be),
calls `OrderService.create` and answers with `endpoints.created_answer`, the endpoint's own
status, headers and body.

The OpenAPI document is unchanged: it is built from the endpoint's routes, which stay.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.types import Scope, Send

from services.kit.front import Answer
from services.kit.security import authenticate
from services.kit.web import add_front_route
from services.orders.endpoints import IDEMPOTENCY_KEY_PATTERN, create_order, created_answer
from services.orders.schemas import CreateOrderRequest
from services.orders.service import OrderService


class CreateRoute:
    """The create's front route (the module docstring)."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = frozenset(paths)

    def route_of(self, scope: Scope) -> str | None:
        path: str = scope["path"]
        return path if scope["method"] == "POST" and path in self.paths else None

    def accept(self, scope: Scope, body: bytes) -> Answer | None:
        headers = _headers(scope, (b"content-type", b"authorization", b"idempotency-key"))
        request = _accepted_body(body, headers.get(b"content-type"))
        key = headers.get(b"idempotency-key")
        if request is None or (key is not None and not IDEMPOTENCY_KEY_PATTERN.fullmatch(key)):
            return None  # the endpoint's own route serves it

        async def answer(send: Send) -> None:
            app: FastAPI = scope["app"]
            principal = await authenticate(app.state, headers.get(b"authorization"))
            orders: OrderService = app.state.orders
            created = await orders.create(principal, request, key)
            status, answer_headers, order = created_answer(created)
            content = order.model_dump_json(by_alias=True).encode()
            raw_headers = [
                (b"content-length", str(len(content)).encode()),
                (b"content-type", b"application/json"),
            ]
            raw_headers += [(k.encode(), v.encode()) for k, v in answer_headers.items()]
            await send({"type": "http.response.start", "status": status, "headers": raw_headers})
            await send({"type": "http.response.body", "body": content})

        return answer

    def sending(self, scope: Scope, send: Send) -> Send:
        return send


def install_create_route(app: FastAPI, router: APIRouter) -> None:
    """Serve the create routes of `router` (the endpoints' router, included in `app` without a
    prefix of its own) through a `CreateRoute` in front of the app."""
    creates = [r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is create_order]
    if not creates:
        raise RuntimeError("the router has no create route to serve")
    add_front_route(app, CreateRoute(route.path for route in creates))


def _headers(scope: Scope, names: tuple[bytes, ...]) -> dict[bytes, str]:
    """The first value of each of `names` the request sends (as Starlette's `get`)."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in names and name not in found:
            found[name] = value.decode("latin-1")
    return found


def _accepted_body(body: bytes | None, content_type: str | None) -> CreateOrderRequest | None:
    """The create the body asks for, or None for one this route leaves to the endpoint."""
    if not body or content_type is None:
        return None
    if content_type.partition(";")[0].strip().lower() != "application/json":
        return None
    try:
        # As FastAPI reads a JSON body: `json.loads`, then the model in Python mode.
        return CreateOrderRequest.model_validate(json.loads(body))
    except (ValueError, ValidationError, RecursionError):
        # JSONDecodeError and UnicodeDecodeError included; JSON nested too deep for `json.loads`
        # is left to the endpoint too, which answers it as FastAPI does.
        return None
