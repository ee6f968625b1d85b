"""The product list's hits, answered before the app's middleware and routing.

An anonymous `GET /inventory/products` whose answer the gateway holds (services/gateway/
products.py) needs none of the work the app does for other requests: no authorization, no
body, no upstream, no CORS headers when the browser sent no `Origin`. Through the whole stack
(CORS, request context, body limit, exception handling, routing, the proxy) such a hit cost
about twice the CPU of answering it here, so this middleware, the outermost of the app's own,
answers it at once and passes everything else on.

A hit answered here keeps what the rest of the gateway promises: the `X-Request-ID` header
(the caller's, or a new one), the request metrics under the route the proxy records for the
list, the cache's hit and 304 counters, `Vary`, the ETag and gzip. A request is passed on,
to be answered as before, when it carries `Authorization` (the view depends on the caller),
`Origin` (CORS), a body, or a `traceparent` (its caller traces it, so the gateway's span
belongs in that trace), and whenever the copy is not confirmed or holds no answer for the
query: the miss then fetches and keeps the answer on the usual path. So hits answered here are
never traced; the request metrics count them with every other request.
"""

from __future__ import annotations

import time
import uuid

from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.products import (
    LIST_PATH,
    LIST_ROUTE,
    PUBLIC_VIEW,
    ProductListCache,
    accepts_gzip,
)
from services.kit.metrics import HTTP_LATENCY, HTTP_REQUESTS
from services.kit.request_context import REQUEST_ID_HEADER

PASSED_ON = frozenset(
    {b"authorization", b"origin", b"content-length", b"transfer-encoding", b"traceparent"}
)
_REQUEST_ID = REQUEST_ID_HEADER.encode()


class ProductListHits:
    """ASGI middleware: answers anonymous product-list hits from `cache`."""

    def __init__(self, app: ASGIApp, cache: ProductListCache, service: str) -> None:
        self.app = app
        self.cache = cache
        self._requests = {
            status: HTTP_REQUESTS.labels(service, "GET", LIST_ROUTE, status)
            for status in ("2xx", "3xx")
        }
        self._latency = HTTP_LATENCY.labels(service, "GET", LIST_ROUTE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != LIST_PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = if_none_match = accept_encoding = None
        for name, value in scope["headers"]:
            if name in PASSED_ON:
                await self.app(scope, receive, send)
                return
            if name == _REQUEST_ID:
                request_id = value
            elif name == b"if-none-match":
                if_none_match = value
            elif name == b"accept-encoding":
                accept_encoding = value
        entry = self.cache.hit(PUBLIC_VIEW, scope.get("query_string", b""))
        if entry is None:
            await self.app(scope, receive, send)
            return
        answer = entry.answer(
            if_none_match=if_none_match, accepts_gzip=accepts_gzip(accept_encoding)
        )
        headers = answer.headers
        if answer.status == 200:
            headers.append((b"content-length", str(len(answer.body)).encode("latin-1")))
        headers.append((_REQUEST_ID, request_id or uuid.uuid4().hex.encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})
        self._requests["2xx" if answer.status == 200 else "3xx"].inc()
        self._latency.observe(time.perf_counter() - started)
