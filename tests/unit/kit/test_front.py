"""What the front (services/kit/front.py) gives a request whose route fails before its answer
starts: the app's problem, the request id on the answer and in the log, the request counted."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import pytest
from fastapi import FastAPI
from starlette.types import Scope

from services.kit.front import Answer
from services.kit.logs import request_id_var
from services.kit.metrics import HTTP_REQUESTS
from services.kit.settings import ServiceSettings
from services.kit.web import add_front_route, create_service_app
from tests.asgi import call_app


class Failing:
    """Takes POST /boom, and fails while reading its body."""

    def route_of(self, scope: Scope) -> str | None:
        return "/boom" if scope["path"] == "/boom" else None

    def accept(self, scope: Scope, body: bytes) -> Answer | None:
        raise RuntimeError("a bug in the route")

    def sending(self, scope: Scope, send: object) -> object:
        return send


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield


class _Ids(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record.getMessage(), request_id_var.get()))


def _count(service: str) -> float:
    for metric in HTTP_REQUESTS.collect():
        for sample in metric.samples:
            labels = {"service": service, "method": "POST", "route": "/boom", "status": "5xx"}
            if sample.name.endswith("_total") and sample.labels == labels:
                return sample.value
    return 0.0


async def test_a_route_that_fails_to_accept_is_a_500_problem_with_its_request_id() -> None:
    app = create_service_app(ServiceSettings(service_name="front-test"), "t", _lifespan)
    add_front_route(app, Failing())  # type: ignore[arg-type]
    ids = _Ids()
    logging.getLogger("services.kit.errors").addHandler(ids)
    before = _count("front-test")
    try:
        start, body = await call_app(
            app,
            "POST",
            "/boom",
            [(b"x-request-id", b"r-9")],
            [{"type": "http.request", "body": b"{}", "more_body": False}],
        )
    finally:
        logging.getLogger("services.kit.errors").removeHandler(ids)

    assert start["status"] == 500
    assert (b"x-request-id", b"r-9") in start["headers"]
    assert orjson.loads(body["body"])["type"].endswith("/internal")
    assert ids.seen == [("unhandled error", "r-9")]
    assert _count("front-test") == before + 1


def test_a_front_route_needs_the_kits_app() -> None:
    with pytest.raises(TypeError, match="create_service_app"):
        add_front_route(FastAPI(), Failing())  # type: ignore[arg-type]
