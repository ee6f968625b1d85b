"""METRICS_PORT: metrics and probe details on an internal port, never on the public one."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from devstack.ports import free_port
from services.kit.settings import ServiceSettings
from services.kit.web import add_readiness_check, create_service_app

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


def service(metrics_port: int | None = None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def broken() -> None:
            raise ConnectionError("db.internal:5432 refused")

        add_readiness_check(app, "postgres", broken)
        yield

    settings = ServiceSettings(
        APP_ENV="development", service_name="probe", METRICS_PORT=metrics_port
    )
    return create_service_app(settings, "probe", lifespan)


@contextlib.asynccontextmanager
async def public(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://public") as client:
            yield client


async def test_with_a_metrics_port_the_public_port_shows_no_metrics_or_details() -> None:
    port = free_port()
    app = service(metrics_port=port)
    async with public(app) as client, httpx.AsyncClient() as internal:
        assert (await client.get("/metrics")).status_code == 404
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "not-ready"}
        assert (await client.get("/healthz")).json() == {"status": "ok"}

        metrics = await internal.get(f"http://127.0.0.1:{port}/metrics")
        assert metrics.status_code == 200
        assert "http_requests_total" in metrics.text
        detailed = await internal.get(f"http://127.0.0.1:{port}/readyz")
        assert detailed.status_code == 503
        assert detailed.json()["checks"]["postgres"].startswith("ConnectionError")
        assert (await internal.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    # The internal server stops with the app.
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as after:
            await after.get(f"http://127.0.0.1:{port}/metrics")


async def test_without_a_metrics_port_everything_is_served_as_before() -> None:
    async with public(service()) as client:
        assert (await client.get("/metrics")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["postgres"].startswith("ConnectionError")
