"""The kit traces requests itself: FastAPI's own telemetry stays off, so a traced request is one
SERVER span (the kit's), not two, and no span is made per dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.kit.settings import ServiceSettings
from services.kit.web import create_service_app


@asynccontextmanager
async def _nothing(_: FastAPI) -> AsyncIterator[None]:
    yield


async def test_fastapi_makes_no_spans_of_its_own_even_with_a_tracer_provider() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_service_app(ServiceSettings(), "test", _nothing)
    # What FastAPI would trace into: a provider handed to it, as a global one would be.
    app._telemetry["tracer_provider"] = provider

    @app.get("/things/{thing}")
    async def thing(thing: str) -> dict[str, str]:
        return {"thing": thing}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/things/a")).json() == {"thing": "a"}
    assert exporter.get_finished_spans() == ()
