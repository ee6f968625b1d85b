"""An upstream's refusal (503 with Retry-After) is repeated by the gateway for its method and
route for UPSTREAM_REFUSAL_HOLD_SECONDS, without forwarding, and the route is asked again after.

The upstream is a raw ASGI app under uvicorn that refuses `POST /orders` as orders does while its
pipeline is backlogged, or with a 429, until the test tells it to accept, and counts what it gets.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import orjson
import pytest
from starlette.types import Receive, Scope, Send

from devstack.testing import RedisServer
from services.gateway.main import create_app
from tests.integration.gateway.support import (
    UvicornThread,
    bearer,
    gateway_settings,
    metric_value,
)

pytestmark = pytest.mark.integration

HOLD_SECONDS = 5.0
TIMEOUT_SECONDS = 10.0


class RefusingUpstream:
    """Answers `POST /orders` with `refusal` (a status) while it is set, 201 otherwise, and
    anything else with 200; counts the requests by method."""

    def __init__(self) -> None:
        self.refusal: int | None = 503
        self.arrived: Counter[str] = Counter()
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        with self._lock:
            self.arrived[scope["method"]] += 1
        status, headers, body = 200, [(b"content-type", b"application/json")], b"[]"
        if scope["method"] == "POST":
            status, body = 201, b"{}"
            if self.refusal is not None:
                status = self.refusal
                code = "pipeline-backlogged" if status == 503 else "rate-limited"
                headers = [
                    (b"content-type", b"application/problem+json"),
                    (b"retry-after", b"3"),
                ]
                body = orjson.dumps({"type": f"about:blank/{code}", "status": status})
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def upstream() -> Iterator[tuple[RefusingUpstream, UvicornThread]]:
    app = RefusingUpstream()
    with UvicornThread(app, proxy_headers=False) as server:
        yield app, server


@pytest.fixture
def gateway(
    upstream: tuple[RefusingUpstream, UvicornThread], redis_server: RedisServer
) -> Iterator[tuple[UvicornThread, dict[str, str]]]:
    settings = gateway_settings(
        redis_server.url, upstream[1].url, UPSTREAM_REFUSAL_HOLD_SECONDS=HOLD_SECONDS
    )
    with UvicornThread(create_app(settings)) as server:
        yield server, bearer(settings, "buyer-3")


def test_a_refused_create_is_refused_at_the_gateway_until_the_hold_ends(
    upstream: tuple[RefusingUpstream, UvicornThread],
    gateway: tuple[UvicornThread, dict[str, str]],
) -> None:
    app, _ = upstream
    server, auth = gateway
    repeated_before = _repeated(server.url)

    def create() -> httpx.Response:
        return httpx.post(f"{server.url}/orders", json={}, headers=auth, timeout=TIMEOUT_SECONDS)

    sent = time.monotonic()
    first = create()
    answered = time.monotonic()
    assert first.status_code == 503
    assert first.json()["type"].endswith("/pipeline-backlogged"), "the upstream's own answer"
    assert app.arrived["POST"] == 1

    again = [create() for _ in range(3)]
    listed = httpx.get(f"{server.url}/orders", headers=auth, timeout=TIMEOUT_SECONDS)
    # The hold began between sending the first create and reading its answer.
    assert time.monotonic() - sent < HOLD_SECONDS, "too slow to observe the hold"
    for response in again:
        assert response.status_code == 503
        assert response.json()["type"].endswith("/overloaded")
        assert response.headers["retry-after"] == "3", "the upstream's Retry-After"
    assert app.arrived["POST"] == 1, "a held create reached the upstream"
    assert _repeated(server.url) == repeated_before + 3
    assert listed.status_code == 200, "another method of the route still passes"
    assert app.arrived["GET"] == 1

    app.refusal = None
    time.sleep(max(0.0, answered + HOLD_SECONDS + 0.1 - time.monotonic()))
    assert create().status_code == 201
    assert app.arrived["POST"] == 2


def test_a_429_refuses_one_client_and_is_not_repeated(
    upstream: tuple[RefusingUpstream, UvicornThread],
    gateway: tuple[UvicornThread, dict[str, str]],
) -> None:
    app, _ = upstream
    server, auth = gateway
    app.refusal = 429

    statuses = [
        httpx.post(
            f"{server.url}/orders", json={}, headers=auth, timeout=TIMEOUT_SECONDS
        ).status_code
        for _ in range(3)
    ]

    assert statuses == [429] * 3
    assert app.arrived["POST"] == 3


def _repeated(base: str) -> float:
    return metric_value(base, "gateway_refusals_repeated_total", upstream="orders")


def _requests_counted(base: str, method: str, route: str, status: str) -> float:
    return metric_value(
        base, "http_requests_total", service="gateway", method=method, route=route, status=status
    )


def test_a_held_refusal_is_answered_like_the_proxys_with_cors_ids_and_metrics(
    upstream: tuple[RefusingUpstream, UvicornThread],
    gateway: tuple[UvicornThread, dict[str, str]],
) -> None:
    app, _ = upstream
    server, auth = gateway
    assert httpx.post(f"{server.url}/orders", json={}, headers=auth).status_code == 503
    counted_before = _requests_counted(server.url, "POST", "/orders", "5xx")
    browser = {**auth, "Origin": "http://localhost:5173", "X-Request-ID": "held-1"}

    held = httpx.post(f"{server.url}/orders", json={}, headers=browser, timeout=TIMEOUT_SECONDS)
    under = httpx.post(
        f"{server.url}/orders/abc/cancel", json={}, headers=auth, timeout=TIMEOUT_SECONDS
    )
    anonymous = httpx.post(f"{server.url}/orders", json={}, timeout=TIMEOUT_SECONDS)

    assert held.status_code == 503
    assert held.headers["content-type"] == "application/problem+json"
    assert held.json() == {
        "type": "https://realtimeorder.io/problems/overloaded",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "The orders service is refusing this request for now; retry in 3 s.",
        "instance": "/orders",
        "retry_after": 3,
    }
    assert held.headers["retry-after"] == "3"
    assert held.headers["x-request-id"] == "held-1"
    assert held.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "Retry-After" in held.headers["access-control-expose-headers"]
    assert under.status_code == 503, "the hold is the route's: /orders/** for POST"
    assert under.json()["instance"] == "/orders/abc/cancel"
    assert len(under.headers["x-request-id"]) == 32, "a new request id"
    assert anonymous.status_code == 401, "a caller the route refuses is told so, not held"
    assert app.arrived["POST"] == 1
    assert _requests_counted(server.url, "POST", "/orders", "5xx") == counted_before + 1
    assert _requests_counted(server.url, "POST", "/orders/{path:path}", "5xx") >= 1
