"""Admission control: more slow creates than the gateway lets through are refused at once, and
requests pass again once the load is gone.

The upstream is a raw ASGI app under uvicorn that holds every `POST /orders` until the test
releases it, so the test knows exactly how many requests are in flight. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from devstack.testing import RedisServer
from services.gateway.admission import Gate
from services.gateway.main import create_app
from tests.integration.gateway.support import UvicornThread, bearer, gateway_settings, metric_value

pytestmark = pytest.mark.integration

LIMIT = 2
QUEUE = 1
QUEUE_SECONDS = 0.2
HOLD_SECONDS = 20.0
WAIT_SECONDS = 10.0


class HoldingUpstream:
    """Holds each `POST /orders` until `release` is set; answers anything else at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.arrived = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "POST":
            with self._lock:
                self.arrived += 1
            await asyncio.to_thread(self.release.wait, HOLD_SECONDS)
        body = b'{"ok": true}'
        headers = [(b"content-type", b"application/json"), (b"content-length", b"12")]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def upstream() -> Iterator[tuple[HoldingUpstream, UvicornThread]]:
    app = HoldingUpstream()
    with UvicornThread(app, proxy_headers=False) as server:
        yield app, server
        app.release.set()


@pytest.fixture
def gateway(
    upstream: tuple[HoldingUpstream, UvicornThread], redis_server: RedisServer
) -> Iterator[tuple[UvicornThread, dict[str, str]]]:
    settings = gateway_settings(
        redis_server.url,
        upstream[1].url,
        UPSTREAM_MAX_IN_FLIGHT=LIMIT,
        UPSTREAM_QUEUE_LENGTH=QUEUE,
        UPSTREAM_QUEUE_SECONDS=QUEUE_SECONDS,
        OVERLOAD_RETRY_AFTER_SECONDS=2,
        UPSTREAM_TIMEOUT_SECONDS=HOLD_SECONDS + 5,
    )
    with UvicornThread(create_app(settings)) as server:
        yield server, bearer(settings, "buyer-1")


def metric(base: str, name: str, upstream: str = "orders") -> float:
    return metric_value(base, name, upstream=upstream)


def wait_until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_creates_beyond_the_limit_are_refused_at_once_and_pass_again_after(
    upstream: tuple[HoldingUpstream, UvicornThread],
    gateway: tuple[UvicornThread, dict[str, str]],
) -> None:
    app, _ = upstream
    server, auth = gateway
    shed_before = metric(server.url, "gateway_admission_shed_total")

    def create(_: int = 0) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = httpx.post(
            f"{server.url}/orders", json={"items": []}, headers=auth, timeout=HOLD_SECONDS + 10
        )
        return response, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=8) as pool:
        held: list[Future[tuple[httpx.Response, float]]] = [
            pool.submit(create) for _ in range(LIMIT)
        ]
        wait_until(lambda: app.arrived == LIMIT, "the held creates to reach the upstream")
        assert metric(server.url, "gateway_upstream_in_flight") == LIMIT

        # The one queue place times out, the others are refused without waiting at all.
        extra = list(pool.map(create, range(QUEUE + 3)))
        assert [response.status_code for response, _ in extra] == [503] * (QUEUE + 3)
        assert all(seconds < HOLD_SECONDS / 2 for _, seconds in extra)
        for response, _ in extra:
            assert response.headers["retry-after"] == "2"
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"].endswith("/overloaded")
        assert app.arrived == LIMIT, "a refused create reached the upstream"
        assert metric(server.url, "gateway_admission_shed_total") == shed_before + QUEUE + 3
        # Probes and routes of other upstreams are not held up by the full gate.
        assert httpx.get(f"{server.url}/healthz", timeout=WAIT_SECONDS).status_code == 200
        assert httpx.get(f"{server.url}/readyz", timeout=WAIT_SECONDS).status_code == 200

        app.release.set()
        assert [f.result(timeout=WAIT_SECONDS)[0].status_code for f in held] == [201] * LIMIT

    recovered = [create()[0].status_code for _ in range(LIMIT + QUEUE + 2)]
    assert recovered == [201] * (LIMIT + QUEUE + 2)
    assert metric(server.url, "gateway_upstream_in_flight") == 0
    assert metric(server.url, "gateway_admission_queued") == 0


def test_a_queued_request_takes_the_slot_that_frees_within_its_wait(
    upstream: tuple[HoldingUpstream, UvicornThread], redis_server: RedisServer
) -> None:
    app, upstream_server = upstream
    settings = gateway_settings(
        redis_server.url,
        upstream_server.url,
        UPSTREAM_MAX_IN_FLIGHT=1,
        UPSTREAM_QUEUE_LENGTH=1,
        UPSTREAM_QUEUE_SECONDS=WAIT_SECONDS,
        UPSTREAM_TIMEOUT_SECONDS=HOLD_SECONDS + 5,
    )
    auth = bearer(settings, "buyer-2")

    def create() -> httpx.Response:
        return httpx.post(f"{server.url}/orders", json={}, headers=auth, timeout=HOLD_SECONDS + 10)

    with UvicornThread(create_app(settings)) as server, ThreadPoolExecutor(2) as pool:
        first = pool.submit(create)
        wait_until(lambda: app.arrived == 1, "the first create to reach the upstream")
        queued = pool.submit(create)
        wait_until(
            lambda: metric(server.url, "gateway_admission_queued") == 1, "the second to queue"
        )
        app.release.set()
        assert first.result(timeout=WAIT_SECONDS).status_code == 201
        assert queued.result(timeout=WAIT_SECONDS).status_code == 201
    assert app.arrived == 2


async def test_a_waiter_that_goes_away_gives_its_place_and_slot_back() -> None:
    gate = Gate("analytics", limit=1, queue_length=1, queue_seconds=WAIT_SECONDS, retry_after=1)
    held = asyncio.Event()
    done = asyncio.Event()

    async def holder() -> None:
        async with gate.slot():
            held.set()
            await done.wait()

    async def waiter() -> None:
        async with gate.slot():
            pass

    holding = asyncio.create_task(holder())
    async with asyncio.timeout(WAIT_SECONDS):
        await held.wait()
    waiting = asyncio.create_task(waiter())
    await asyncio.sleep(0)  # one step: the waiter runs until it waits for a slot
    assert len(gate._waiters) == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(WAIT_SECONDS):
            await waiting
    assert not gate._waiters
    done.set()
    async with asyncio.timeout(WAIT_SECONDS):
        await holding
    assert gate.in_flight == 0
    async with asyncio.timeout(WAIT_SECONDS), gate.slot():
        assert gate.in_flight == 1
    assert gate.in_flight == 0
