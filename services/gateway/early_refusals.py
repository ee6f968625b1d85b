"""Refusals a request gets at once, answered before the rest of the app's middleware.

Two refusals need nothing of the request but its route and its caller (admission.py): a held
one, while an upstream refuses a route (orders' `pipeline-backlogged` under overload), and a
full gate's, while every slot to the route's upstream is held and its queue is full. Under
overload they are most of the gateway's requests. Through the whole stack (request context,
body limit, exception handling, routing, the proxy, then the problem's rendering back through
every middleware's `send`), a refusal cost the gateway about as much CPU as forwarding a
request, on cores the pipeline was short of. So this middleware, inside CORS (a browser's
request gets its CORS headers as any other answer) and outside everything else, answers such a
request at once and passes everything else on; while nothing is held and no gate is full it
only looks at one dict and each upstream's two counters.

The answer is the one the proxy gives, rendered as the app's error handler renders it
(`overloaded`, 503, the upstream's Retry-After or the gate's, the same problem details), with
the `X-Request-ID` header (the caller's or a new one) and the request metrics under the proxy's
route template. A request is refused here only when the proxy would have refused it at once:
its path has no dot segments, its caller passes the route's policy (a caller refused by it is
passed on to be answered 401 or 403 as before), it declares no body over the limit, and it is
not the product list the gateway answers from memory without a slot (products.py). Its body is
not read. Refusals answered here are not traced; `gateway_refusals_repeated_total`,
`gateway_admission_shed_total` and the request metrics count them.
"""

from __future__ import annotations

import time
import uuid

from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.admission import Admission
from services.gateway.endpoints import route_template
from services.gateway.products import ProductListCache
from services.gateway.routes import has_dot_segments, match_route
from services.gateway.service import authorize
from services.kit.errors import DomainError, domain_problem
from services.kit.web import REQUEST_ID_HEADER, count_request

_REQUEST_ID = REQUEST_ID_HEADER.encode()


class EarlyRefusals:
    """ASGI middleware: refuses the requests `admission` would refuse at once."""

    def __init__(self, app: ASGIApp, admission: Admission, service: str, body_limit: int) -> None:
        self.app = app
        self.admission = admission
        self.service = service
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.admission.refusing:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        route = match_route(method, path)
        if (
            route is None
            or not self.admission.refuses(method, route)
            or has_dot_segments(path)
            or ProductListCache.serves(method, path)
        ):
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
        refused = self.admission.refusal(method, route)  # it may have ended meanwhile
        if refused is None:
            await self.app(scope, receive, send)
            return
        answer = domain_problem(refused, path)
        answer.headers[REQUEST_ID_HEADER] = request_id or uuid.uuid4().hex
        await answer(scope, receive, send)
        count_request(self.service, method, route_template(route.prefix, path), 503, started)


def _within(content_length: bytes, limit: int) -> bool:
    return not content_length.isdigit() or int(content_length) <= limit
