"""The gateway app: the proxy routes, the Socket.IO server, CORS, and the pooled upstream client.

The Socket.IO server is mounted at /socket.io on the same app, so it shares the gateway's
origin; its long-polling requests run behind the same CORS and request-id middleware, and its
WebSocket connections, which that middleware would pass through untouched, are handed to it
before any of it (socket_scopes.py). The middleware answers for CORS, and the Socket.IO server
refuses a connection from an origin outside CORS_ORIGINS, which browsers do not check for
WebSockets. The proxy registers only the service prefixes of the routing table, so the mount is
reached whatever the order.

`/readyz` does not depend on the upstream services. The gateway can serve as soon as it runs,
and answers 502 for a service that is down; tying its readiness to every service would take
all gateway replicas out of the load balancer when a single service fails, turning a partial
outage into a total one. Each service reports its own readiness.

It does depend on Redis. Live updates reach this replica's Socket.IO clients only through
Redis, so a replica that cannot reach Redis serves clients that wait for pushes that never
come, and should not take new ones; a rollout with a wrong REDIS_URL stops at its first
replica instead of replacing working ones. A Redis outage for every replica takes the gateway
out too, but auth, orders and inventory are not ready without Redis either, so little that
works is lost.

Every live connection holds a file descriptor, so at start the gateway raises its soft
open-files limit to the hard one (`make up`'s supervisor gives its programs a soft limit of
at least 4096; a container's hard limit is usually 1048576): otherwise the connection after the
soft limit's is refused however little memory and CPU the others use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import socketio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from services.gateway.admission import Admission
from services.gateway.endpoints import PROXIED_METHODS, NamedMount, ProxyFront, proxy_routes
from services.gateway.live import (
    SessionEventsListener,
    create_socket_server,
    listen_for_pushes,
    stop_listening,
)
from services.gateway.product_hits import ProductListHits
from services.gateway.products import ProductListCache
from services.gateway.routes import UPSTREAM_NAMES
from services.gateway.service import UpstreamClient, open_upstream_client
from services.gateway.settings import Settings
from services.gateway.socket_scopes import SocketScopes
from services.kit.cache import create_redis
from services.kit.changes import PRODUCT_CHANGES, ChangeWatch
from services.kit.heap import FrozenSurvivors
from services.kit.limits import raise_open_files_limit
from services.kit.runtime import Runtime
from services.kit.tokens import Revocations, VerifiedTokens
from services.kit.web import ServiceApp, add_front_route, add_readiness_check, create_service_app

EXPOSED_HEADERS = ["X-Request-ID", "Retry-After", "Location", "Idempotent-Replayed"]
SOCKET_IO_PATH = "socket.io"


def create_app(settings: Settings | None = None) -> ServiceApp:
    """The gateway as a FastAPI app; the upstream client and Redis open with its lifespan."""
    settings = settings or Settings()

    def upstream_client() -> UpstreamClient:
        client: UpstreamClient = app.state.upstream_client
        return client

    def revocations() -> Revocations:
        markers: Revocations = app.state.revocations
        return markers

    def verified_tokens() -> VerifiedTokens:
        tokens: VerifiedTokens = app.state.verified_tokens
        return tokens

    sockets, socket_sessions = create_socket_server(
        settings,
        orders_url=settings.upstream_url("orders"),
        upstream=upstream_client,
        revocations=revocations,
        verified_tokens=verified_tokens,
        allowed_origins=settings.cors_origins,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        raise_open_files_limit()
        redis = create_redis(settings)
        add_readiness_check(app, "redis", redis.ping)
        runtime = Runtime(settings.service_name)
        runtime.add("session-events", lambda: SessionEventsListener(redis, socket_sessions))
        if settings.product_cache_max_entries:
            runtime.add(
                "product-changes",
                lambda: ChangeWatch(redis, PRODUCT_CHANGES, product_cache),
            )
        survivors: FrozenSurvivors | None = app.state.frozen_survivors
        if survivors is not None:
            survivors.watch_connections(
                closed=lambda: socket_sessions.closed, open_now=lambda: len(socket_sessions)
            )
        runtime.attach(app)
        try:
            async with open_upstream_client(settings) as client:
                app.state.upstream_client = client
                listen_for_pushes(sockets)
                runtime.start()
                try:
                    yield
                finally:
                    await runtime.stop()
                    await stop_listening(sockets)
        finally:
            await redis.aclose()

    product_cache = ProductListCache(
        settings.product_cache_max_entries, settings.product_cache_check_seconds
    )
    app = create_service_app(settings, title="RealTimeOrder gateway", lifespan=lifespan)
    app.state.product_cache = product_cache
    app.state.admission = Admission(
        UPSTREAM_NAMES,
        limit=settings.upstream_max_in_flight,
        queue_length=settings.upstream_queue_length,
        queue_seconds=settings.upstream_queue_seconds,
        retry_after=settings.overload_retry_after_seconds,
        standing_seconds=settings.upstream_queue_standing_seconds,
        standing_wait_seconds=settings.upstream_queue_standing_wait_seconds,
        refusal_hold_seconds=settings.upstream_refusal_hold_seconds,
    )
    app.state.sockets = sockets
    app.state.socket_sessions = socket_sessions
    app.router.routes.extend(proxy_routes())
    socket_app = socketio.ASGIApp(sockets, socketio_path=SOCKET_IO_PATH)
    app.router.routes.append(NamedMount(f"/{SOCKET_IO_PATH}", socket_app))
    cors: dict[str, Any] = {
        "allow_origins": settings.cors_origins,
        "allow_credentials": True,
        "allow_methods": PROXIED_METHODS,
        "allow_headers": ["*"],
        "expose_headers": EXPOSED_HEADERS,
        "max_age": 600,
    }
    app.add_middleware(CORSMiddleware, **cors)
    # The proxied requests are served ahead of all the middleware, with the same CORS answer
    # (services/gateway/endpoints.py); the middleware's app is never called.
    add_front_route(app, ProxyFront(CORSMiddleware(app=_unreached, **cors)))
    # Outside CORS and the rest (services/gateway/product_hits.py).
    app.add_middleware(ProductListHits, cache=product_cache, service=settings.service_name)
    # Added last, so the outermost of the app's own middleware (services/gateway/socket_scopes.py).
    app.add_middleware(SocketScopes, sockets=socket_app, path=f"/{SOCKET_IO_PATH}")
    return app


async def _unreached(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("the proxy's front route answers through CORS, never into it")
