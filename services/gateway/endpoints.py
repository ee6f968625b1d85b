"""The proxy: a front route for the requests under the service prefixes, and a route in the app.

Every proxied request is served by `ProxyFront`, a front route (kit/front.py) ahead of the
app's middleware and routing: in process, a proxied request took 91 µs of the gateway's CPU
through the app and 47 µs through the front. It answers as the app's stack did: with the
kit's request id, metrics, span, body limit and error rendering, and with the CORS headers of
the gateway's `CORSMiddleware`, whose own `send` it answers through. It leaves two kinds of
request to the app: a CORS preflight, which the middleware answers, and the product list,
which the gateway answers from memory (products.py, product_hits.py); for those the app
still has the proxy's routes, `Proxy` registered once per service prefix.

A request the proxy cannot forward at once is refused at once, before anything is forwarded
(admission.py): while its upstream's refusal is held, or while the upstream's gate is full.
Refused on the front route, such a refusal costs the gateway less than forwarding a request,
which matters most under overload, when refusals are most of its requests.

There is no catch-all route: paths outside the table's prefixes are free for other ASGI apps
mounted on the gateway (Socket.IO at /socket.io/), and unknown paths are 404 without any work.
The proxy's routes are raw ASGI endpoints on plain Starlette routes, not FastAPI routes, and
record themselves in the scope, where the request metrics find the route template. Errors are
raised as domain errors and rendered as the app's handlers render them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from services.gateway.admission import Admission
from services.gateway.errors import InvalidPath
from services.gateway.headers import public_location, upstream_request_headers, upstream_url
from services.gateway.products import ProductListCache, without_validators
from services.gateway.routes import ROUTES, has_dot_segments, match_route, service_prefixes
from services.gateway.service import (
    UpstreamAnswer,
    UpstreamRequest,
    authorize,
    forward,
    read_body,
)
from services.gateway.settings import Settings
from services.kit.errors import NotFound
from services.kit.front import Answer
from services.kit.logs import request_id_var

PROXIED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_PROXIED = frozenset(PROXIED_METHODS)
_NO_BODY_STATUSES = frozenset({204, 304})
_UNDER = "{prefix}/{{path:path}}"


class NamedRoute(Route):
    """A Starlette route that puts itself in the scope, for metrics by route template."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self
        await super().handle(scope, receive, send)


class NamedMount(Mount):
    """A mounted ASGI app that puts its mount in the scope, for metrics by route template."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self
        await super().handle(scope, receive, send)


class Proxy:
    """The proxy's route in the app, for the requests its front route (`ProxyFront`) leaves to
    the app: the product list the gateway answers from memory, past its middleware."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings: Settings = scope["app"].state.settings
        content_length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                content_length = value.decode("latin-1")
                break
        try:
            body = await read_body(
                content_length, _body_chunks(receive), settings.max_request_body_bytes
            )
        except ClientDisconnect:
            return  # nobody is left to answer
        await proxied(scope, body, send)


class ProxyFront:
    """The proxy as a front route (kit/front.py): every request under a service prefix, served
    ahead of the app's middleware with the answer `CORSMiddleware` would give it, except the two
    the app answers itself: a CORS preflight (its middleware answers it) and the product list
    (answered from memory, products.py and product_hits.py)."""

    def __init__(self, cors: CORSMiddleware) -> None:
        self.cors = cors
        self.prefixes = tuple((prefix, prefix + "/") for prefix in service_prefixes(ROUTES))

    def route_of(self, scope: Scope) -> str | None:
        path: str = scope["path"]
        method: str = scope["method"]
        if method not in _PROXIED:
            return None  # the app's routes answer 405 with the methods they take
        for prefix, under in self.prefixes:
            if path == prefix or path.startswith(under):
                break
        else:
            return None
        if ProductListCache.serves(method, path) or (method == "OPTIONS" and _preflight(scope)):
            return None
        return route_template(prefix, path)

    def accept(self, scope: Scope, body: bytes) -> Answer:
        return partial(proxied, scope, body)

    def sending(self, scope: Scope, send: Send) -> Send:
        return partial(self.cors.send, send=send, request_headers=Headers(scope=scope))


async def proxied(scope: Scope, body: bytes, send: Send) -> None:
    """Check the caller against the route's policy, then forward the request as it came."""
    state = scope["app"].state
    settings: Settings = state.settings
    method: str = scope["method"]
    path: str = scope["path"]
    if has_dot_segments(path):
        raise InvalidPath("Paths with '.' or '..' segments are not accepted.")
    route = match_route(method, path)
    if route is None:
        raise NotFound(f"No service serves {method} {path}.")
    authorization = if_none_match = accept_encoding = None
    for name, value in scope["headers"]:
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"if-none-match":
            if_none_match = value
        elif name == b"accept-encoding":
            accept_encoding = value
    await authorize(state, route.policy, authorization)
    client = scope.get("client")
    upstream_base = settings.upstream_url(route.upstream)
    outgoing = UpstreamRequest(
        method=method,
        url=upstream_url(
            upstream_base,
            scope.get("raw_path") or path.encode(),
            scope.get("query_string", b""),
        ),
        headers=upstream_request_headers(
            scope["headers"],
            request_id=request_id_var.get() or uuid.uuid4().hex,
            client_host=client[0] if client else None,
            scheme=scope.get("scheme", "http"),
        ),
        body=body,
    )
    products: ProductListCache = state.product_cache
    cached = products.serves(method, path)
    if cached:
        outgoing = replace(outgoing, headers=without_validators(outgoing.headers))

    admission: Admission = state.admission

    async def fetch() -> UpstreamAnswer:
        async with admission.slot(method, route):
            answer = await forward(state.upstream_client, outgoing, route.upstream)
        admission.answered(method, route, answer.status, answer.headers)
        return answer

    if cached:
        answer = await products.answer(
            state,
            authorization=authorization,
            query=scope.get("query_string", b""),
            if_none_match=if_none_match,
            accept_encoding=accept_encoding,
            fetch=fetch,
        )
    else:
        answer = await fetch()
        products.after_forwarded(route.upstream, method, answer.status)
    headers = public_location(answer.headers, upstream_base)
    length = answer.content_length if method == "HEAD" else str(len(answer.body))
    if length is not None and answer.status >= 200 and answer.status not in _NO_BODY_STATUSES:
        headers.append((b"content-length", length.encode("latin-1")))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


def _preflight(scope: Scope) -> bool:
    names = {name for name, _ in scope["headers"]}
    return b"origin" in names and b"access-control-request-method" in names


async def _body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def proxy_routes() -> list[BaseRoute]:
    """Routes `/<prefix>` and `/<prefix>/...` of every service in the table to `proxy`."""
    return [
        NamedRoute(path, Proxy(), methods=PROXIED_METHODS)
        for prefix in service_prefixes(ROUTES)
        for path in (prefix, _UNDER.format(prefix=prefix))
    ]


def route_template(prefix: str, path: str) -> str:
    """The template of the proxy route that serves `path` under the service prefix `prefix`."""
    return prefix if path == prefix else _UNDER.format(prefix=prefix)
