"""A refusal a request gets at once (a held one, a full gate's) is answered by the middleware
without the app; everything else passes on."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
from starlette.datastructures import State
from starlette.types import Message, Receive, Scope, Send

from services.gateway.admission import Admission
from services.gateway.early_refusals import EarlyRefusals
from services.gateway.metrics import ADMISSION_SHED
from services.gateway.routes import UPSTREAM_NAMES
from tests.unit.gateway.support import LOGIN

LIMIT = 1024


class App:
    def __init__(self) -> None:
        self.called = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called += 1


def _admission(*, limit: int = 8) -> Admission:
    return Admission(
        UPSTREAM_NAMES,
        limit=limit,
        queue_length=0,
        queue_seconds=0.1,
        retry_after=1,
        refusal_hold_seconds=60.0,
    )


def _serve(
    admission: Admission,
    path: str,
    *headers: tuple[bytes, bytes],
    method: str = "POST",
    full: str | None = None,
) -> tuple[int, list[Message]]:
    """Pass one request through the middleware, with the gate of the upstream `full` (if
    given) holding its only slot meanwhile: (how often the app was called, what was sent)."""
    app = App()
    middleware = EarlyRefusals(app, admission, "gateway", LIMIT)
    sent: list[Message] = []

    async def receive() -> Message:
        raise AssertionError("the body was read")

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": list(headers),
        "app": SimpleNamespace(state=State()),
    }

    async def serve() -> None:
        if full is None:
            await middleware(scope, receive, send)
            return
        async with admission.gate(full).slot():
            await middleware(scope, receive, send)

    asyncio.run(serve())
    return app.called, sent


def _holding() -> Admission:
    admission = _admission()
    admission.refusals.answered("POST", LOGIN, 503, [(b"Retry-After", b"4")])
    return admission


def test_a_held_route_is_refused_without_the_app() -> None:
    called, sent = _serve(_holding(), "/auth/login", (b"x-request-id", b"r-1"))

    assert called == 0
    start, body = sent
    assert start["status"] == 503
    headers = dict(start["headers"])
    assert headers[b"retry-after"] == b"4"
    assert headers[b"x-request-id"] == b"r-1"
    assert headers[b"content-type"] == b"application/problem+json"
    problem = orjson.loads(body["body"])
    assert headers[b"content-length"] == str(len(body["body"])).encode()
    assert problem["type"].endswith("/overloaded")
    assert (problem["status"], problem["retry_after"], problem["instance"]) == (
        503,
        4,
        "/auth/login",
    )


def test_what_the_proxy_would_not_hold_passes_on() -> None:
    assert _serve(_admission(), "/auth/login") == (1, []), "nothing held"
    assert _serve(_holding(), "/auth/register")[0] == 1, "another route"
    assert _serve(_holding(), "/auth/login/../login")[0] == 1, "dot segments: 400 there"
    too_large = (b"content-length", str(LIMIT + 1).encode())
    assert _serve(_holding(), "/auth/login", too_large)[0] == 1, "413 there"
    within = (b"content-length", str(LIMIT).encode())
    assert _serve(_holding(), "/auth/login", within)[0] == 0


def test_a_full_gates_route_is_refused_without_the_app_and_counted_as_shed() -> None:
    shed = ADMISSION_SHED.labels("auth")
    before = shed._value.get()

    called, sent = _serve(_admission(limit=1), "/auth/login", full="auth")

    assert called == 0
    start, body = sent
    assert start["status"] == 503
    assert dict(start["headers"])[b"retry-after"] == b"1"
    assert orjson.loads(body["body"])["type"].endswith("/overloaded")
    assert shed._value.get() == before + 1


def test_a_gate_with_room_or_another_upstreams_full_gate_passes_on() -> None:
    assert _serve(_admission(limit=2), "/auth/login", full="auth")[0] == 1, "a slot is free"
    assert _serve(_admission(limit=1), "/auth/login", full="orders")[0] == 1, "another gate"


def test_the_product_list_from_memory_is_not_refused_for_a_full_gate() -> None:
    called, _ = _serve(_admission(limit=1), "/inventory/products", method="GET", full="inventory")

    assert called == 1
