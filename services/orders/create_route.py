"""POST /orders served without FastAPI's per-request machinery, answering as its route does.

The create is the one request every order makes of this service, and FastAPI spent about 110
µs of CPU on it beyond the work itself: resolving the endpoint's dependencies, reading the
parameters' annotations, validating the body, then validating the answer again against the
response model before serialising it. Served through the app with the service stubbed, a
create took 164 µs of CPU through the endpoint and 60 µs through this route (the kit's
middleware, the error handlers and the router included in both).

`CreateRoute` comes first in the app's routes and matches a POST to either path of the create
(`/orders` and the seed's `/orders/create`, endpoints.py), naming the endpoint's route in the
scope, so metrics, traces and logs name the same route as before. A request it takes the whole
way is one with a JSON body (`Content-Type: application/json`) that `CreateOrderRequest` accepts
and, if it sends one, a well-formed `Idempotency-Key`. Anything else, an invalid body, a missing
or other content type, a malformed key or a client gone before its body arrived, is routed again
past this route, with the body read so far, and the endpoint serves it: every refusal is
FastAPI's own, word for word. After the body is accepted the route does what the endpoint does:
it authenticates the caller (`kit/security.py`; a refusal is a `DomainError`, rendered by the
app's handlers as the endpoint's would be), calls `OrderService.create` and answers with
`endpoints.created_answer`, the endpoint's own status, headers and body.

The OpenAPI document is unchanged: it is built from the endpoint's routes, which stay.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Message, Receive, Scope, Send

from services.kit.security import authenticate
from services.orders.endpoints import IDEMPOTENCY_KEY_PATTERN, create_order, created_answer
from services.orders.schemas import CreateOrderRequest
from services.orders.service import OrderService

_DECLINED = "realtimeorder.create_route.declined"


class CreateRoute(BaseRoute):
    """The create's lean path in front of the routes that serve it (the module docstring)."""

    def __init__(self, routes: Iterable[APIRoute]) -> None:
        self.routes = {route.path: route for route in routes}

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and _DECLINED not in scope
            and (route := self.routes.get(scope["path"])) is not None
        ):
            return Match.FULL, {"route": route}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)  # named by the endpoint's routes, not this one

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        messages, body = await _read_body(receive)
        headers = _headers(scope, (b"content-type", b"authorization", b"idempotency-key"))
        request = _accepted_body(body, headers.get(b"content-type"))
        key = headers.get(b"idempotency-key")
        app: FastAPI = scope["app"]
        if request is None or (key is not None and not IDEMPOTENCY_KEY_PATTERN.fullmatch(key)):
            # Routed again, past this route: the endpoint's own route serves it.
            scope[_DECLINED] = True
            await app.router(scope, _replay(messages, receive), send)
            return
        principal = await authenticate(app.state, headers.get(b"authorization"))
        orders: OrderService = app.state.orders
        status, answer_headers, order = created_answer(await orders.create(principal, request, key))
        content = order.model_dump_json(by_alias=True).encode()
        raw_headers = [
            (b"content-length", str(len(content)).encode()),
            (b"content-type", b"application/json"),
        ]
        raw_headers += [(name.encode(), value.encode()) for name, value in answer_headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": content})


def install_create_route(app: FastAPI, router: APIRouter) -> None:
    """Put a `CreateRoute` first in the app's routes, for the create routes of `router` (the
    endpoints' router, included in `app` without a prefix of its own)."""
    creates = [r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is create_order]
    if not creates:
        raise RuntimeError("the router has no create route to serve")
    app.router.routes.insert(0, CreateRoute(creates))


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The request's messages and its body; None for the body when the client went away (or
    the body-size limit answered) before it was all read."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` that gives `messages` again, then whatever comes next."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


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
    except (ValueError, ValidationError):  # JSONDecodeError and UnicodeDecodeError included
        return None
