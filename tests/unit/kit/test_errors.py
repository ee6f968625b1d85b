from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from services.kit.errors import Conflict, RateLimited
from services.kit.settings import ServiceSettings
from services.kit.web import add_readiness_check, create_service_app


class Body(BaseModel):
    quantity: int


@asynccontextmanager
async def _nothing(_: FastAPI) -> AsyncIterator[None]:
    yield


def _app() -> FastAPI:
    app = create_service_app(ServiceSettings(), "test", _nothing)

    @app.get("/conflict")
    async def conflict() -> None:
        raise Conflict("Already there.", allowed=["A", "B"])

    @app.get("/limited")
    async def limited() -> None:
        raise RateLimited("Slow down.", retry_after=42)

    @app.post("/body")
    async def body(payload: Body) -> Body:
        return payload

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return app


async def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_domain_error_is_problem_json_with_extras() -> None:
    async with await _client(_app()) as client:
        response = await client.get("/conflict", headers={"X-Request-ID": "req-1"})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "req-1"
    body = response.json()
    assert body["status"] == 409
    assert body["detail"] == "Already there."
    assert body["allowed"] == ["A", "B"]
    assert body["instance"] == "/conflict"


async def test_rate_limit_sets_retry_after() -> None:
    async with await _client(_app()) as client:
        response = await client.get("/limited")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "42"


async def test_validation_error_lists_fields() -> None:
    async with await _client(_app()) as client:
        response = await client.post("/body", json={"quantity": "many"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "quantity"


async def test_unexpected_error_hides_internals() -> None:
    async with await _client(_app()) as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert "secret" not in response.text


async def test_probes_and_metrics() -> None:
    app = _app()

    async def failing() -> None:
        raise ConnectionError("db down")

    async with await _client(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        await client.get("/conflict")
        metrics = (await client.get("/metrics")).text
        add_readiness_check(app, "db", failing)
        not_ready = await client.get("/readyz")
    assert 'route="/conflict"' in metrics
    assert not_ready.status_code == 503
    assert "db down" in not_ready.json()["checks"]["db"]
