"""Held refusals (admission.py's `Refusals`), answered before the rest of the app's middleware.

While an upstream refuses a route (orders' `pipeline-backlogged` under overload), most requests
to it are refused by the gateway, and under overload those refusals are most of the gateway's
requests. Through the whole stack (request context, body limit, exception handling, routing,
the proxy, then the problem's rendering back through every middleware's `send`), a refusal cost
the gateway about as much CPU as forwarding a request, on cores the pipeline was short of. So
this middleware, inside CORS (a browser's request gets its CORS headers as any other answer)
and outside everything else, answers a held route's request at once and passes everything else
on; while nothing is held it only looks at one dict.

The answer is the one the proxy gives, rendered as the app's error handler renders it
(`overloaded`, 503, the upstream's Retry-After, the same problem details), with the
`X-Request-ID` header (the caller's or a new one) and the request
metrics under the proxy's route template. A request is held only when the proxy would have held
it: its path has no dot segments, its caller passes the route's policy (a caller refused by it
is passed on to be answered 401 or 403 as before), and it declares no body over the limit. Its
body is not read. Held refusals answered here are not traced; `gateway_refusals_repeated_total`
and the request metrics count them.
"""

from __future__ import annotations

import time
import uuid

from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.admission import Refusals
from services.gateway.endpoints import route_template
from services.gateway.routes import has_dot_segments, match_route
from services.gateway.service import authorize
from services.kit.errors import DomainError, domain_problem
from services.kit.web import REQUEST_ID_HEADER, count_request

_REQUEST_ID = REQUEST_ID_HEADER.encode()


class HeldRefusals:
    """ASGI middleware: refuses requests to routes whose upstream refusal `refusals` holds."""

    def __init__(self, app: ASGIApp, refusals: Refusals, service: str, body_limit: int) -> None:
        self.app = app
        self.refusals = refusals
        self.service = service
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.refusals.holding:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        route = match_route(method, path)
        if route is None or self.refusals.held(method, route) is None or has_dot_segments(path):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        authorization = request_id = None
        for name, value in scope["headers"]:
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == _REQUEST_ID and request_id is None:
                request_id = value.decode("latin-1")
            elif name == b"content-length" and not _within(value, self.body_limit):
                await self.app(scope, receive, send)
                return
        try:
            await authorize(scope["app"].state, route.policy, authorization)
        except DomainError:
            await self.app(scope, receive, send)  # answered 401 or 403 there
            return
        refused = self.refusals.refusal(method, route)  # the hold may have ended meanwhile
        if refused is None:
            await self.app(scope, receive, send)
            return
        answer = domain_problem(refused, path)
        answer.headers[REQUEST_ID_HEADER] = request_id or uuid.uuid4().hex
        await answer(scope, receive, send)
        count_request(self.service, method, route_template(route.prefix, path), 503, started)


def _within(content_length: bytes, limit: int) -> bool:
    return not content_length.isdigit() or int(content_length) <= limit
