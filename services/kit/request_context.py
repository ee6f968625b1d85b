"""What every request gets, whichever way it is served: its request id, its metrics, its span.

`RequestContextMiddleware` gives it to the requests that pass through a service app's
middleware (kit/web.py); a front route (kit/front.py) gives the same to the requests it serves
ahead of it, with `server_span`, `finish_span` and `count_request`.

- `X-Request-ID`: the caller's (up to 128 characters), or a new one; set in the logs'
  context for the request and sent back on the answer.
- Metrics by route template and status class: `http_requests_total` and
  `http_request_duration_seconds` (the probes and `/metrics` are not counted).
- With tracing on (kit/tracing.py), a SERVER span, a child of the caller's `traceparent`, named
  `<method> <route template>` once the route is known; a 5xx marks it failed. A trace the
  caller did not sample gets no span here either.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kit import tracing
from services.kit.logs import request_id_var
from services.kit.metrics import HTTP_LATENCY, HTTP_REQUESTS, labelled

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = REQUEST_ID_HEADER.encode()
UNTRACKED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestContextMiddleware:
    """Propagates X-Request-ID, records request metrics by route template and, with tracing on,
    serves the request in a SERVER span."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        path = scope.get("path", "")
        if path in UNTRACKED_PATHS:
            await self._serve(scope, receive, send, request_id, None)
            return
        with server_span(self.service, scope, request_id) as span:
            await self._serve(scope, receive, send, request_id, span)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, span: Span | None
    ) -> None:
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        answer = IdentifiedSend(send, request_id)
        try:
            await self.app(scope, receive, answer)
        finally:
            path = scope.get("path", "")
            if path not in UNTRACKED_PATHS:
                route = getattr(scope.get("route"), "path", "unmatched")
                method = scope.get("method", "GET")
                finish_span(span, method, route, answer.status)
                count_request(self.service, method, route, answer.status, started)
            request_id_var.reset(token)


class IdentifiedSend:
    """A `send` that adds the request's `X-Request-ID` to the answer's head and remembers the
    answer's status (500 until one is sent) and whether it has started."""

    __slots__ = ("header", "send", "started", "status")

    def __init__(self, send: Send, request_id: str) -> None:
        self.send = send
        self.header = (_REQUEST_ID, request_id.encode("latin-1"))
        self.status = 500
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.started = True
            message["headers"] = [*message.get("headers", ()), self.header]
        await self.send(message)


@contextmanager
def server_span(service: str, scope: Scope, request_id: str) -> Iterator[Span | None]:
    """The request's SERVER span for the block (None while tracing is off, or when the caller's
    trace is not sampled), a child of the caller's `traceparent`."""
    if tracing.tracer(service) is None:
        yield None
        return
    method = scope.get("method", "GET")
    with tracing.span(
        service,
        method,
        kind=SpanKind.SERVER,
        headers=scope.get("headers", []),
        attributes={
            "http.request.method": method,
            "url.path": scope.get("path", ""),
            "realtimeorder.request_id": request_id,
        },
    ) as span:
        yield span


def finish_span(span: Span | None, method: str, route: str, status: int) -> None:
    """Name the request's span by its route template and give it the answer's status."""
    if span is None:
        return
    span.update_name(f"{method} {route}")
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


def count_request(service: str, method: str, route: str, status: int, started: float) -> None:
    """Record one answered request in the request metrics: by route template and status class,
    timed from `started` (`time.perf_counter()`)."""
    labelled(HTTP_REQUESTS, service, method, route, f"{status // 100}xx").inc()
    labelled(HTTP_LATENCY, service, method, route).observe(time.perf_counter() - started)


def _request_id(scope: Scope) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == _REQUEST_ID:
            found: str = value.decode("latin-1")[:128]
            return found or uuid.uuid4().hex
    return uuid.uuid4().hex
