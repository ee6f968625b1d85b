"""The proxy's front route (services/gateway/endpoints.py, kit/front.py) answers as the app's
whole stack does, CORS, request ids, refusals and errors included, and leaves the preflights and
the product list to the app."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from starlette.types import Message

from services.gateway.main import create_app
from services.gateway.metrics import ADMISSION_SHED
from services.gateway.settings import Settings
from services.kit import http1
from services.kit.metrics import HTTP_REQUESTS
from services.kit.web import ServiceApp
from tests.asgi import call_app

ORIGIN = "http://localhost:5173"
BODY = b'{"email":"a@example.com","password":"secret-secret"}'


@dataclass
class Upstream:
    """Stands in for the pooled upstream client: answers every request 200 and keeps it."""

    status: int = 200
    headers: list[tuple[bytes, bytes]] = field(
        default_factory=lambda: [(b"Content-Type", b"application/json"), (b"Retry-After", b"4")]
    )
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)
    timeout: float = 5.0
    service: str = "gateway"

    async def request(self, method: str, url: Any, headers: Any, body: bytes = b"") -> http1.Answer:
        self.requests.append((method, str(url), body))
        return http1.Answer(self.status, list(self.headers), b'{"ok":true}')


def _app(*, front: bool, upstream: Upstream) -> ServiceApp:
    app = create_app(Settings(cors_origins=[ORIGIN], max_request_body_bytes=1024))
    if not front:
        app.front.routes.clear()
    app.state.upstream_client = upstream
    return app


async def _call(
    app: ServiceApp,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
) -> list[Message]:
    sent_headers = [(b"host", b"gateway"), (b"x-request-id", b"r-1"), *headers]
    body_message: Message = {"type": "http.request", "body": body, "more_body": False}
    return await call_app(app, method, path, sent_headers, [body_message])


def _answer(sent: list[Message]) -> tuple[int, list[tuple[bytes, bytes]], Any]:
    start, *bodies = sent
    content = b"".join(m.get("body", b"") for m in bodies)
    headers = sorted((name.lower(), value) for name, value in start["headers"])
    return start["status"], headers, orjson.loads(content) if content else None


def _held(app: ServiceApp) -> None:
    from tests.unit.gateway.support import LOGIN

    app.state.admission.refusals.hold_seconds = 60.0
    app.state.admission.refusals.answered("POST", LOGIN, 503, [(b"Retry-After", b"4")])


JSON = (b"content-type", b"application/json")
CASES: dict[str, tuple[str, str, list[tuple[bytes, bytes]], bytes]] = {
    "forwarded": ("POST", "/auth/login", [JSON], BODY),
    "forwarded, an allowed origin": (
        "POST",
        "/auth/login",
        [JSON, (b"origin", ORIGIN.encode())],
        BODY,
    ),
    "forwarded, another origin": ("POST", "/auth/login", [JSON, (b"origin", b"http://evil")], BODY),
    "a signed-in route without a token": ("GET", "/orders", [], b""),
    "dot segments": ("POST", "/auth/x/../login", [JSON], BODY),
    "no route under the prefix": ("POST", "/inventory/nothing/here/at/all", [], b""),
    "a declared body over the limit": ("POST", "/auth/login", [(b"content-length", b"1025")], b""),
    "a body over the limit": ("POST", "/auth/login", [JSON], b"x" * 1025),
    "HEAD, unauthenticated": ("HEAD", "/auth/me", [], b""),
    "HEAD, forwarded": ("HEAD", "/inventory/products/p-1", [], b""),
    "a method the proxy does not take": ("TRACE", "/auth/login", [], b""),
}


@pytest.mark.parametrize("case", CASES)
def test_the_front_answers_as_the_apps_whole_stack(case: str) -> None:
    method, path, headers, body = CASES[case]
    front_upstream, app_upstream = Upstream(), Upstream()
    front, whole = (
        _app(front=True, upstream=front_upstream),
        _app(front=False, upstream=app_upstream),
    )

    async def both() -> tuple[list[Message], list[Message]]:
        return (
            await _call(front, method, path, headers, body),
            await _call(whole, method, path, headers, body),
        )

    served, expected = asyncio.run(both())

    assert _answer(served) == _answer(expected)
    assert front_upstream.requests == app_upstream.requests


def test_a_held_refusal_is_answered_without_the_upstream_as_by_the_whole_stack() -> None:
    front_upstream, app_upstream = Upstream(), Upstream()
    front, whole = (
        _app(front=True, upstream=front_upstream),
        _app(front=False, upstream=app_upstream),
    )
    _held(front)
    _held(whole)

    async def both() -> tuple[list[Message], list[Message]]:
        return (
            await _call(front, "POST", "/auth/login", [JSON], BODY),
            await _call(whole, "POST", "/auth/login", [JSON], BODY),
        )

    served, expected = asyncio.run(both())

    status, headers, problem = _answer(served)
    assert (status, problem["type"].rsplit("/", 1)[1]) == (503, "overloaded")
    assert (b"retry-after", b"4") in headers
    assert (b"x-request-id", b"r-1") in headers
    assert _answer(served) == _answer(expected)
    assert front_upstream.requests == app_upstream.requests == []


def test_a_full_gate_refuses_at_once_and_counts_it_as_shed() -> None:
    upstream = Upstream()
    app = _app(front=True, upstream=upstream)
    shed = ADMISSION_SHED.labels("auth")
    before = shed._value.get()

    async def with_the_gate_full() -> list[Message]:
        gate = app.state.admission.gate("auth")
        gate.limit, gate.queue_length = 1, 0
        async with gate.slot():
            return await _call(app, "POST", "/auth/login", [JSON], BODY)

    status, _, problem = _answer(asyncio.run(with_the_gate_full()))

    assert (status, problem["type"].rsplit("/", 1)[1]) == (503, "overloaded")
    assert upstream.requests == []
    assert shed._value.get() == before + 1


def test_a_forwarded_request_is_counted_under_its_route_template() -> None:
    labels = {"service": "gateway", "method": "POST", "route": "/auth/{path:path}", "status": "2xx"}
    before = _sample(labels)

    asyncio.run(_call(_app(front=True, upstream=Upstream()), "POST", "/auth/login", [JSON], BODY))

    assert _sample(labels) == before + 1


def _sample(labels: dict[str, str]) -> float:
    for metric in HTTP_REQUESTS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels == labels:
                return sample.value
    return 0.0


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        (
            "OPTIONS",
            "/orders",
            [(b"origin", ORIGIN.encode()), (b"access-control-request-method", b"POST")],
        ),
        ("GET", "/inventory/products", []),
        ("GET", "/socket.io/", []),
        ("GET", "/healthz", []),
        ("GET", "/ordersx", []),
    ],
)
def test_what_the_app_answers_itself_is_not_taken(
    method: str, path: str, headers: list[tuple[bytes, bytes]]
) -> None:
    app = _app(front=True, upstream=Upstream())
    scope = {"type": "http", "method": method, "path": path, "headers": headers}

    assert app.front.take(scope) is None


def test_a_proxied_path_is_taken_under_the_proxys_route_template() -> None:
    app = _app(front=True, upstream=Upstream())

    def template(method: str, path: str) -> str | None:
        taken = app.front.take({"type": "http", "method": method, "path": path, "headers": []})
        return None if taken is None else taken[1]

    assert template("POST", "/orders") == "/orders"
    assert template("GET", "/orders/123") == "/orders/{path:path}"
    assert template("HEAD", "/inventory/products") == "/inventory/{path:path}"
    assert template("OPTIONS", "/orders") == "/orders", "not a preflight without its headers"


def test_an_unexpected_error_is_a_counted_500_problem_with_the_request_id() -> None:
    class Failing(Upstream):
        async def request(
            self, method: str, url: Any, headers: Any, body: bytes = b""
        ) -> http1.Answer:
            raise RuntimeError("a bug")

    labels = {"service": "gateway", "method": "POST", "route": "/auth/{path:path}", "status": "5xx"}
    before = _sample(labels)
    app = _app(front=True, upstream=Failing())

    status, headers, problem = _answer(
        asyncio.run(_call(app, "POST", "/auth/login", [JSON, (b"origin", ORIGIN.encode())], BODY))
    )

    assert (status, problem["type"].rsplit("/", 1)[1]) == (500, "internal")
    assert (b"x-request-id", b"r-1") in headers
    assert (b"access-control-allow-origin", ORIGIN.encode()) in headers
    assert _sample(labels) == before + 1
