"""A held refusal is answered by the middleware without the app; everything else passes on."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
from starlette.datastructures import State
from starlette.types import Message, Receive, Scope, Send

from services.gateway.admission import Refusals
from services.gateway.held_refusals import HeldRefusals
from services.gateway.routes import Route, match_route

LIMIT = 1024


def _route(method: str, path: str) -> Route:
    route = match_route(method, path)
    assert route is not None
    return route


LOGIN = _route("POST", "/auth/login")  # public: no caller to authorize


class App:
    def __init__(self) -> None:
        self.called = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called += 1


def _serve(
    refusals: Refusals, path: str, *headers: tuple[bytes, bytes]
) -> tuple[int, list[Message]]:
    app = App()
    middleware = HeldRefusals(app, refusals, "gateway", LIMIT)
    sent: list[Message] = []

    async def receive() -> Message:
        raise AssertionError("the body was read")

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": list(headers),
        "app": SimpleNamespace(state=State()),
    }
    asyncio.run(middleware(scope, receive, send))
    return app.called, sent


def _holding() -> Refusals:
    refusals = Refusals(60.0)
    refusals.answered("POST", LOGIN, 503, [(b"Retry-After", b"4")])
    return refusals


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
    assert _serve(Refusals(60.0), "/auth/login") == (1, []), "nothing held"
    assert _serve(_holding(), "/auth/register")[0] == 1, "another route"
    assert _serve(_holding(), "/auth/login/../login")[0] == 1, "dot segments: 400 there"
    too_large = (b"content-length", str(LIMIT + 1).encode())
    assert _serve(_holding(), "/auth/login", too_large)[0] == 1, "413 there"
    within = (b"content-length", str(LIMIT).encode())
    assert _serve(_holding(), "/auth/login", within)[0] == 0
