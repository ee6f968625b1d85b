"""The FastAPI app every service starts from: request ids, metrics, probes and error rendering.

`create_service_app` gives a service `/healthz` (the process is alive: every check registered
with `add_liveness_check` reports nothing), `/readyz` (every
dependency registered with `add_readiness_check` answers) and `/metrics`, a request-id and
metrics middleware, and problem+json errors. The service adds its routers and its lifespan.

With METRICS_PORT set (`metrics_port`), `/metrics` and the probes with their details (which
check failed, and why) are served on that port by a second, internal server that starts once
the service's lifespan has started and stops before it ends; the main port, the one an ingress
routes, then has no `/metrics`, and its `/healthz` and `/readyz` answer the status code and
status alone. Unset, the main port serves everything, as the local stack's Prometheus expects.

Tracing (kit/tracing.py) is configured here, once per service: with an OTLP endpoint set, the
middleware serves each request (but the probes and `/metrics`) in a SERVER span, a child of
the caller's `traceparent`; without one it does no tracing work at all.

Request bodies are limited to MAX_REQUEST_BODY_BYTES (`BodySizeLimitMiddleware`): a declared
Content-Length over it is answered 413 before the app runs, and a chunked body is cut off with
413 as soon as it passes the limit, so a service reached directly (not through the gateway,
which has the same limit) never buffers or parses 50 MB before it authenticates anyone.

Each process also times its garbage collections (`python_gc_pause_seconds{generation}`,
kit/metrics.py): a full collection stops everything in proportion to the objects the process
holds.

The lifespan also opens `app.state.revocations` (kit/tokens.py), which `kit/security.py`
checks each access token against; `app.state.verified_tokens` verifies each token's signature
once per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kit import tracing
from services.kit.cache import create_redis
from services.kit.errors import install_error_handlers, too_large
from services.kit.front import Front, FrontRoute
from services.kit.heap import FrozenSurvivors
from services.kit.metrics import time_gc_pauses
from services.kit.request_context import RequestContextMiddleware
from services.kit.settings import ServiceSettings
from services.kit.tokens import Revocations, VerifiedTokens

ReadinessCheck = Callable[[], Awaitable[object]]
LivenessCheck = Callable[[], Mapping[str, str]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
log = logging.getLogger(__name__)
NO_FRAMEWORK_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


class ServiceApp(FastAPI):
    """A FastAPI app whose front routes (kit/front.py) serve their requests ahead of its
    middleware and routing; every other request, and every request they decline, goes through
    the app as usual."""

    front: Front

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.front.routes:
            taken = self.front.take(scope)
            if taken is not None:
                scope["app"] = self
                await self.front.serve(*taken, scope, receive, send, super().__call__)
                return
        await super().__call__(scope, receive, send)


def add_front_route(app: FastAPI, route: FrontRoute) -> None:
    """Serve the requests `route` takes ahead of the app's middleware (kit/front.py)."""
    if not isinstance(app, ServiceApp):
        raise TypeError("front routes need the kit's app (create_service_app)")
    app.front.routes.append(route)


class BodySizeLimitMiddleware:
    """Refuses request bodies over `limit` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, "content-length")
        if (
            declared is not None
            and declared.isascii()
            and declared.isdigit()
            and int(declared) > self.limit
        ):
            await self._too_large(scope, receive, send)
            return
        received = 0
        started = answered = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the 413 is the answer; whatever the app says after it goes nowhere
            started = started or message["type"] == "http.response.start"
            await send(message)

        async def limited() -> Message:
            # The app sees a disconnect once the body passed the limit (FastAPI turns an error
            # raised here into a 400 about parsing), and the client gets the 413 sent here.
            nonlocal received, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    if not started:
                        await self._too_large(scope, receive, send)
                    answered = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, limited, guarded_send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await too_large(self.limit, scope.get("path"))(scope, receive, send)


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode()
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            decoded: str = value.decode("latin-1")[:128]
            return decoded
    return None


def add_readiness_check(app: FastAPI, name: str, check: ReadinessCheck) -> None:
    """Make `/readyz` depend on `check` (which raises or times out when not ready)."""
    app.state.readiness_checks[name] = check


def add_liveness_check(app: FastAPI, name: str, check: LivenessCheck) -> None:
    """Make `/healthz` fail while `check` reports problems (a mapping of what to why)."""
    app.state.liveness_checks[name] = check


async def _run_check(check: ReadinessCheck) -> str | None:
    try:
        async with asyncio.timeout(2.0):
            await check()
    except Exception as exc:  # any failure means not ready; the reason goes in the body
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


class _InternalServer(uvicorn.Server):
    """The metrics port's server, run inside the service's own: that one owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def _internal_server(app: FastAPI, settings: ServiceSettings) -> AsyncIterator[None]:
    """Serve `/metrics` and the detailed probes of `app` on METRICS_PORT while the block runs."""
    assert settings.metrics_port is not None

    async def healthz(request: Request) -> JSONResponse:
        return await _healthz(app, details=True)

    async def readyz(request: Request) -> JSONResponse:
        return await _readyz(app, details=True)

    internal = Starlette(
        routes=[
            Route("/metrics", _metrics),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ]
    )
    config = uvicorn.Config(
        internal,
        host=settings.host,
        port=settings.metrics_port,
        lifespan="off",
        log_config=None,
        access_log=False,
    )
    server = _InternalServer(config)
    task = asyncio.create_task(server.serve(), name="metrics-server")
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            server.should_exit = True
            with contextlib.suppress(BaseException):
                await task
            raise RuntimeError(f"the metrics server did not start on port {settings.metrics_port}")
        await asyncio.sleep(0.01)
    log.info("metrics served on their own port", extra={"port": settings.metrics_port})
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def _metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _healthz(app: Starlette, *, details: bool) -> JSONResponse:
    checks: dict[str, LivenessCheck] = app.state.liveness_checks
    problems = {f"{name}.{what}": why for name, c in checks.items() for what, why in c().items()}
    if problems:
        body: dict[str, Any] = {"status": "failing"}
        if details:
            body["problems"] = problems
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ok"})


async def _readyz(app: Starlette, *, details: bool) -> JSONResponse:
    checks: dict[str, ReadinessCheck] = app.state.readiness_checks
    results = await asyncio.gather(*(_run_check(c) for c in checks.values()))
    failures = {name: r for name, r in zip(checks, results, strict=True) if r is not None}
    body: dict[str, Any] = {"status": "ready" if not failures else "not-ready"}
    if details:
        body["checks"] = {name: failures.get(name, "ok") for name in checks}
    return JSONResponse(body, status_code=503 if failures else 200)


def create_service_app(settings: ServiceSettings, title: str, lifespan: Lifespan) -> ServiceApp:
    """A FastAPI app with the platform's probes, metrics, request ids and error handling."""
    separate_metrics = settings.metrics_port is not None
    tracing.configure(settings.service_name)
    time_gc_pauses()

    async def wrapped_lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("starting", extra={"port": settings.port, "environment": settings.environment})
        redis = create_redis(settings)
        app.state.revocations = Revocations(
            redis,
            cache_seconds=settings.token_check_cache_seconds,
            timeout_seconds=settings.token_check_timeout_seconds,
        )
        survivors = FrozenSurvivors(settings.gc_thaw_seconds) if settings.gc_thaw_seconds else None
        app.state.frozen_survivors = survivors
        if survivors is not None:
            survivors.install()
        try:
            async with lifespan(app):
                if separate_metrics:
                    async with _internal_server(app, settings):
                        yield
                else:
                    yield
        finally:
            await redis.aclose()
            if survivors is not None:
                survivors.uninstall()
        log.info("stopped")

    # The kit traces and measures requests itself (RequestContextMiddleware); FastAPI's own
    # telemetry would add a second SERVER span, and spans per dependency, to every request once
    # a tracer provider is set.
    app = ServiceApp(
        title=title,
        lifespan=asynccontextmanager(wrapped_lifespan),
        telemetry=NO_FRAMEWORK_TELEMETRY,
    )
    app.front = Front(settings.service_name, settings.max_request_body_bytes)
    app.state.settings = settings
    app.state.verified_tokens = VerifiedTokens(settings)
    app.state.readiness_checks = {}
    app.state.liveness_checks = {}
    app.add_middleware(BodySizeLimitMiddleware, limit=settings.max_request_body_bytes)
    app.add_middleware(RequestContextMiddleware, service=settings.service_name)
    install_error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> JSONResponse:
        return await _healthz(request.app, details=not separate_metrics)

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        return await _readyz(request.app, details=not separate_metrics)

    if not separate_metrics:
        app.add_api_route("/metrics", _metrics, include_in_schema=False)

    return app
