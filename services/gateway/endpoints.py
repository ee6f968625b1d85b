"""The proxy endpoint, registered once per service prefix of the routing table.

There is no catch-all route: paths outside the table's prefixes are free for other ASGI apps
mounted on the gateway (Socket.IO at /socket.io/), and unknown paths are 404 without any work.

The proxy is a raw ASGI endpoint on plain Starlette routes, not a FastAPI route: it reads the
request's scope and body itself, so request objects, dependency resolution and response
validation would be per-request work with nothing to do. FastAPI's router records only its own
routes in the request scope, where the request metrics find the route template, so these routes
record themselves. Errors are raised as domain errors and rendered by the app's handlers.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

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
from services.kit.logs import request_id_var

PROXIED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
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
    """Checks the caller against the route's policy, then forwards the request as it came."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings: Settings = scope["app"].state.settings
        method: str = scope["method"]
        path: str = scope["path"]
        if has_dot_segments(path):
            raise InvalidPath("Paths with '.' or '..' segments are not accepted.")
        route = match_route(method, path)
        if route is None:
            raise NotFound(f"No service serves {method} {path}.")
        authorization = content_length = None
        if_none_match = accept_encoding = None
        for name, value in scope["headers"]:
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"content-length" and content_length is None:
                content_length = value.decode("latin-1")
            elif name == b"if-none-match":
                if_none_match = value
            elif name == b"accept-encoding":
                accept_encoding = value
        state = scope["app"].state
        await authorize(state, route.policy, authorization)
        try:
            body = await read_body(
                content_length, _body_chunks(receive), settings.max_request_body_bytes
            )
        except ClientDisconnect:
            return  # nobody is left to answer
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
