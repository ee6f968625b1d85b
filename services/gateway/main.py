"""The gateway app: the proxy routes, CORS for the web apps, and the pooled upstream client.

Other ASGI apps join the gateway by mounting on the app `create_app` returns, for instance
`app.mount("/socket.io", socketio.ASGIApp(sio, socketio_path="socket.io"))`: the proxy
registers only the service prefixes of the routing table, so a mount elsewhere is reached
whatever the order, and it runs behind the same CORS and request-id middleware.

`/readyz` does not depend on the upstream services. The gateway can serve as soon as it runs,
and answers 502 for a service that is down; tying its readiness to every service would take
all gateway replicas out of the load balancer when a single service fails, turning a partial
outage into a total one. Each service reports its own readiness.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from services.gateway.endpoints import PROXIED_METHODS, proxy_router
from services.gateway.service import create_http_client
from services.gateway.settings import Settings
from services.kit.web import create_service_app

EXPOSED_HEADERS = ["X-Request-ID", "Retry-After", "Location"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway as a FastAPI app; the upstream client opens and closes with its lifespan."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with create_http_client(settings) as client:
            app.state.http_client = client
            yield

    app = create_service_app(settings, title="RealTimeOrder gateway", lifespan=lifespan)
    app.include_router(proxy_router())
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=PROXIED_METHODS,
        allow_headers=["*"],
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
    )
    return app
