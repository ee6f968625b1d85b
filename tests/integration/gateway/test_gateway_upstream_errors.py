"""The gateway against upstreams that fail: a crash after answering 500, a refused connection.

The upstream is a raw ASGI app under uvicorn, so each test decides exactly when it answers and
when it fails. Its crash handler does what a FastAPI service does on an unhandled error:
Starlette sends the 500 and re-raises, and uvicorn then closes the connection, without having
said `Connection: close`. Threading events, set by the test, order the steps; every wait on
them is bounded.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send
from yarl import URL

from devstack.testing import RedisServer
from services.gateway import service
from services.gateway.main import create_app
from services.gateway.settings import Settings
from services.kit import http1
from services.kit.tokens import Principal
from tests.integration.gateway.support import UvicornThread, closed_port
from tests.signing import sign, token_env

pytestmark = pytest.mark.integration

WAIT_SECONDS = 5.0


class ScriptedUpstream:
    """`/crash` answers 500 and fails once `release` is set; `/hold` answers once the crash
    has closed its connection; anything else echoes its method, path and client port."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.write_arrived = threading.Event()
        self.write_may_answer = threading.Event()
        self.requests: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        self.requests.append(f"{scope['method']} {path}")
        if path.endswith("/crash"):
            await _answer(send, 500, b"Internal Server Error")
            await asyncio.to_thread(self.release.wait, WAIT_SECONDS)
            # Runs after this task's step, in which uvicorn handles the error and closes.
            asyncio.get_running_loop().call_soon(self.write_may_answer.set)
            raise RuntimeError("an unhandled error after the 500 went out")
        if path.endswith("/hold"):
            self.write_arrived.set()
            await asyncio.to_thread(self.write_may_answer.wait, WAIT_SECONDS)
        query = dict(
            part.split("=", 1) for part in scope["query_string"].decode().split("&") if part
        )
        client = scope.get("client") or ("", 0)
        body = json.dumps({"method": scope["method"], "path": path, "port": client[1]})
        extra = [(b"retry-after", query["retry_after"].encode())] if "retry_after" in query else []
        await _answer(send, int(query.get("status", "200")), body.encode(), extra)


async def _answer(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    headers += extra or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Gateway:
    def __init__(self, app: FastAPI, server: UvicornThread, settings: Settings) -> None:
        self.app = app
        self.server = server
        self.settings = settings
        self.client = httpx.Client(base_url=server.url, timeout=10)

    @property
    def client_pool(self) -> http1.Client:
        client: service.UpstreamClient = self.app.state.upstream_client
        return client.http

    def auth(self, user: str) -> dict[str, str]:
        principal = Principal(user_id=user, email=f"{user}@example.com", role="USER")
        return {"Authorization": f"Bearer {sign(self.settings, principal)}"}

    def request(self, method: str, path: str, user: str = "ada", **kwargs: Any) -> httpx.Response:
        return self.client.request(method, path, headers=self.auth(user), **kwargs)


@pytest.fixture
def upstream() -> Iterator[tuple[ScriptedUpstream, UvicornThread]]:
    app = ScriptedUpstream()
    with UvicornThread(app, proxy_headers=False) as server:
        yield app, server
        app.release.set()
        app.write_may_answer.set()


@pytest.fixture
def gateway(
    upstream: tuple[ScriptedUpstream, UvicornThread], redis_server: RedisServer
) -> Iterator[Gateway]:
    settings = Settings(
        APP_ENV="test",
        **token_env(),
        REDIS_URL=redis_server.url,
        ORDER_SERVICE_URL=upstream[1].url,
        UPSTREAM_TIMEOUT_SECONDS=WAIT_SECONDS * 2,
        # Every request here must reach the upstream, a refusal's next one included
        # (test_gateway_refusals.py covers refusals repeated without asking).
        UPSTREAM_REFUSAL_HOLD_SECONDS=0,
    )
    app = create_app(settings)
    with UvicornThread(app) as server:
        gateway = Gateway(app, server, settings)
        yield gateway
        gateway.client.close()


def test_an_upstream_crash_does_not_fail_the_next_users_write(
    gateway: Gateway, upstream: tuple[ScriptedUpstream, UvicornThread]
) -> None:
    app, _ = upstream
    crashed = gateway.request("GET", "/orders/o-1/crash", user="ada")
    assert crashed.status_code == 500
    with ThreadPoolExecutor(max_workers=1) as pool:
        write = pool.submit(gateway.request, "POST", "/orders/hold", user="bob", json={})
        assert app.write_arrived.wait(WAIT_SECONDS), "the write never reached the upstream"
        app.release.set()
        response = write.result(timeout=WAIT_SECONDS * 2)
    assert response.status_code == 200, response.text
    assert response.json()["method"] == "POST"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_connection_that_answered_5xx_is_not_reused(gateway: Gateway, status: int) -> None:
    first = gateway.request("GET", "/orders/a")
    assert first.status_code == 200
    failed = gateway.request("GET", f"/orders/b?status={status}")
    assert failed.status_code == status
    after = gateway.request("GET", "/orders/c")
    assert failed.json()["port"] == first.json()["port"]
    assert after.json()["port"] != failed.json()["port"]


def test_a_connection_that_refused_with_retry_after_is_reused(gateway: Gateway) -> None:
    first = gateway.request("GET", "/orders/a")
    refused = gateway.request("GET", "/orders/b?status=503&retry_after=2")
    after = gateway.request("GET", "/orders/c")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "2"
    assert {first.json()["port"], refused.json()["port"], after.json()["port"]} == {
        first.json()["port"]
    }


def test_a_connection_that_answered_4xx_is_reused(gateway: Gateway) -> None:
    ports = {
        gateway.request("GET", f"/orders/x?status={status}").json()["port"]
        for status in (200, 404, 409, 200)
    }
    assert len(ports) == 1


def test_a_write_whose_connection_was_refused_is_sent_again(
    gateway: Gateway,
    upstream: tuple[ScriptedUpstream, UvicornThread],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, _ = upstream
    real_send = service._send
    attempts: list[URL] = []

    async def refused_once(
        client: service.UpstreamClient, request: service.UpstreamRequest
    ) -> service.UpstreamAnswer:
        attempts.append(request.url)
        if len(attempts) == 1:
            # The first attempt goes to a port nobody listens on: the connection is refused.
            request = service.UpstreamRequest(
                method=request.method,
                url=request.url.with_port(closed_port()),
                headers=request.headers,
                body=request.body,
            )
        return await real_send(client, request)

    send: Callable[..., Awaitable[service.UpstreamAnswer]] = refused_once
    monkeypatch.setattr(service, "_send", send)
    response = gateway.request("POST", "/orders", json={"items": []})
    assert response.status_code == 200, response.text
    assert len(attempts) == 2
    assert app.requests == ["POST /orders"]


def test_a_connection_the_upstream_closed_while_idle_is_not_written_to(
    gateway: Gateway,
    upstream: tuple[ScriptedUpstream, UvicornThread],
) -> None:
    """An idle pooled connection the upstream closes (its keep-alive ended, a restart) is found
    closed and replaced: a POST sent after it reaches the upstream once, on a new connection."""
    app, server = upstream
    first = gateway.request("GET", "/orders/a")
    assert first.status_code == 200
    # The upstream ends its side of every idle connection, as uvicorn does at its keep-alive,
    # and the gateway hears of it before the next request.
    for connection in list(server.server.server_state.connections):
        connection.loop.call_soon_threadsafe(connection.transport.close)
    pooled = [
        idle
        for origin in gateway.client_pool._origins.values()  # private: the pool's idle list
        for idle in origin.idle
    ]
    assert pooled
    deadline = time.monotonic() + WAIT_SECONDS
    while not all(connection.closed for connection in pooled):
        assert time.monotonic() < deadline, "the gateway never saw the close"
        time.sleep(0.01)
    posted = gateway.request("POST", "/orders/b", json={})
    assert posted.status_code == 200, posted.text
    assert posted.json()["port"] != first.json()["port"]
    assert app.requests == ["GET /orders/a", "POST /orders/b"]
