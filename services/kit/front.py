"""Front routes: a service's hottest requests, served ahead of the app's middleware and routing.

Every request through a service app passes about ten ASGI layers before its endpoint: uvicorn's
proxy headers, FastAPI's and Starlette's error and telemetry layers, the kit's request context
and body limit, the exception handlers, the exit stack and the router, each with its own
coroutine and, for most, a wrapper around `send` that every message of the answer passes
through again. Measured in process with the upstream stubbed, the gateway spent 91 µs of CPU on
a proxied request through its app and 47 µs through this front, its own 413, request id,
metrics and error rendering included. Every order makes one such request of the gateway and one
of the orders service, so those two take theirs here.

A `FrontRoute` says which requests it takes (`route_of`: the route template they are counted
under, or None to leave the request to the app) and, once the body is read, whether it serves
this one (`accept`: the answer to run, or None to leave it to the app after all, which then
reads the same body). A request a front route takes gets, in one frame, what the app's layers
give every request:

- its `X-Request-ID` (the caller's, or a new one) on the answer and in the logs;
- the request metrics under the route template (`http_requests_total`,
  `http_request_duration_seconds`);
- with tracing on, a SERVER span, a child of the caller's `traceparent`, named by the template;
- the body limit: a declared or streamed body over MAX_REQUEST_BODY_BYTES is answered 413 as
  the kit's middleware answers it;
- errors rendered as the app's handlers render them (`errors.problem_for`): a domain error as
  its problem, an unexpected one logged and answered 500.

A client gone before its body ended gets no answer. The app's other middleware (a service's
own, such as the gateway's CORS) does not run for these requests: a front route that needs its
work does it itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kit.errors import problem_for, too_large
from services.kit.logs import request_id_var
from services.kit.request_context import (
    REQUEST_ID_HEADER,
    IdentifiedSend,
    count_request,
    finish_span,
    server_span,
)

Answer = Callable[[Send], Awaitable[None]]
"""A request's answer, run with the `send` it answers through."""

_REQUEST_ID = REQUEST_ID_HEADER.encode()


class FrontRoute(Protocol):
    def route_of(self, scope: Scope) -> str | None:
        """The template of the route the request (an HTTP scope) is served under here, or None
        to leave it to the app. Looks at the scope only: the body is not read yet."""

    def accept(self, scope: Scope, body: bytes) -> Answer | None:
        """The request's answer, or None to leave it to the app (which reads the same body).
        Nothing is sent before the answer runs."""

    def sending(self, scope: Scope, send: Send) -> Send:
        """What every answer to a request this route serves goes through, an error's or a 413
        included: `send` itself, or a wrapper that adds what the app's middleware would (the
        gateway's CORS headers)."""


class Front:
    """The front routes of one service app, tried in order."""

    def __init__(self, service: str, body_limit: int) -> None:
        self.service = service
        self.body_limit = body_limit
        self.routes: list[FrontRoute] = []

    def take(self, scope: Scope) -> tuple[FrontRoute, str] | None:
        """The front route that takes the request, and its route template; None for the app."""
        for route in self.routes:
            template = route.route_of(scope)
            if template is not None:
                return route, template
        return None

    async def serve(
        self,
        route: FrontRoute,
        template: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        app: ASGIApp,
    ) -> None:
        """Serve a request `route` took under `template`; one it declines goes to `app`."""
        started = time.perf_counter()
        request_id = declared = None
        for name, value in scope["headers"]:
            if name == _REQUEST_ID and request_id is None:
                request_id = value.decode("latin-1")[:128]
            elif name == b"content-length" and declared is None:
                declared = value
        answer = await self._answer(route, scope, receive, send, app, declared)
        if answer is None:
            return  # left to the app, or the client is gone
        request_id = request_id or uuid.uuid4().hex
        identified = IdentifiedSend(route.sending(scope, send), request_id)
        token = request_id_var.set(request_id)
        try:
            with server_span(self.service, scope, request_id) as span:
                try:
                    await answer(identified)
                except Exception as exc:
                    if identified.started:
                        raise  # too late for another answer: the server closes the connection
                    await _responding(problem_for, exc, scope, receive)(identified)
                finally:
                    finish_span(span, scope["method"], template, identified.status)
        finally:
            count_request(self.service, scope["method"], template, identified.status, started)
            request_id_var.reset(token)

    async def _answer(
        self,
        route: FrontRoute,
        scope: Scope,
        receive: Receive,
        send: Send,
        app: ASGIApp,
        declared: bytes | None,
    ) -> Answer | None:
        """The request's answer: the 413, the route's, or the problem its refusal to parse is.
        None once the app has served a request the route declined, or the client went away."""
        limit = self.body_limit
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return _responding(too_large, limit, scope, receive)
        messages, body = await _read_body(receive, limit)
        if body is None:
            return None
        if len(body) > limit:
            return _responding(too_large, limit, scope, receive)
        try:
            accepted = route.accept(scope, body)
        except Exception as exc:  # answered as an error raised by the answer would be
            return _responding(problem_for, exc, scope, receive)
        if accepted is None:
            await app(scope, _replay(messages, receive), send)
            return None
        return accepted


def _responding(
    make: Callable[[Any, str], Response], detail: Any, scope: Scope, receive: Receive
) -> Answer:
    """An answer that sends `make(detail, path)`, made when it runs: within the request's id
    and span, so an unexpected error's log line carries them."""

    async def answer(send: Send) -> None:
        await make(detail, scope["path"])(scope, receive, send)

    return answer


async def _read_body(receive: Receive, limit: int) -> tuple[list[Message], bytes | None]:
    """The request's messages and its body, read until it ends or passes `limit` (then what was
    read); None for the body when the client went away first."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return messages, None
        messages.append(message)
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit or not message.get("more_body", False):
            if len(messages) == 1:
                return messages, chunk
            return messages, b"".join(m.get("body", b"") for m in messages)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` that gives `messages` again, then whatever comes next."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
