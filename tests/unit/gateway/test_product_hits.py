"""The product list's hits answered before the app: which requests, and what they carry."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from prometheus_client import REGISTRY
from starlette.datastructures import State
from starlette.types import Message, Receive, Scope, Send

from services.gateway.product_hits import PASSED_ON, ProductListHits
from services.gateway.products import LIST_PATH, LIST_ROUTE, ProductListCache
from services.gateway.service import UpstreamAnswer
from tests.support import Clock

BODY = b'{"items": [], "nextCursor": null}'
ETAG = 'W/"page-1"'
SERVICE = "hits-test"


class Inner:
    """The app behind the middleware: records that it was asked."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"inner"})


async def fetch() -> UpstreamAnswer:
    headers = [
        (b"content-type", b"application/json"),
        (b"etag", ETAG.encode()),
        (b"cache-control", b"no-cache"),
    ]
    return UpstreamAnswer(200, headers, BODY, None)


async def kept_cache(clock: Clock, query: bytes = b"") -> ProductListCache:
    """A confirmed copy holding the public answer to `query`."""
    cache = ProductListCache(max_entries=8, check_seconds=1.0)
    cache.clock = clock
    cache.confirm(clock.now)
    await cache.answer(
        State(),
        authorization=None,
        query=query,
        if_none_match=None,
        accept_encoding=None,
        fetch=fetch,
    )
    return cache


async def call(
    app: ProductListHits,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    method: str = "GET",
    path: str = LIST_PATH,
    query: bytes = b"",
) -> tuple[int, dict[bytes, bytes], bytes]:
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": headers or [],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, body = sent
    return start["status"], dict(start["headers"]), body["body"]


def requests_counted(status: str) -> float:
    labels = {"service": SERVICE, "method": "GET", "route": LIST_ROUTE, "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


async def test_a_hit_is_answered_without_the_app() -> None:
    inner = Inner()
    app = ProductListHits(inner, await kept_cache(Clock()), SERVICE)
    before = requests_counted("2xx")

    status, headers, body = await call(app, [(b"x-request-id", b"req-1")])

    assert inner.calls == 0
    assert (status, body) == (200, BODY)
    assert headers[b"etag"] == ETAG.encode()
    assert headers[b"content-length"] == str(len(BODY)).encode()
    assert headers[b"vary"] == b"Accept-Encoding, Authorization"
    assert headers[b"x-request-id"] == b"req-1"
    assert requests_counted("2xx") == before + 1


async def test_a_hit_gets_a_new_request_id_gzip_or_304() -> None:
    inner = Inner()
    app = ProductListHits(inner, await kept_cache(Clock()), SERVICE)
    before = requests_counted("3xx")

    _, plain, _ = await call(app)
    _, zipped, compressed = await call(app, [(b"accept-encoding", b"gzip, br")])
    status, not_modified, empty = await call(app, [(b"if-none-match", ETAG.encode())])

    assert len(plain[b"x-request-id"]) == 32
    assert zipped[b"content-encoding"] == b"gzip"
    assert gzip.decompress(compressed) == BODY
    assert zipped[b"content-length"] == str(len(compressed)).encode()
    assert (status, empty) == (304, b"")
    assert b"content-length" not in not_modified
    assert requests_counted("3xx") == before + 1
    assert inner.calls == 0


@pytest.mark.parametrize("header", sorted(PASSED_ON))
async def test_a_request_the_copy_cannot_answer_alone_is_passed_on(header: bytes) -> None:
    inner = Inner()
    app = ProductListHits(inner, await kept_cache(Clock()), SERVICE)

    status, _, body = await call(app, [(header, b"x")])

    assert (status, body, inner.calls) == (299, b"inner", 1)


async def test_other_requests_unknown_queries_and_an_unconfirmed_copy_are_passed_on() -> None:
    clock = Clock()
    inner = Inner()
    app = ProductListHits(inner, await kept_cache(clock, query=b"q=known"), SERVICE)

    await call(app, method="HEAD", query=b"q=known")
    await call(app, path=LIST_PATH + "/1", query=b"q=known")
    await call(app, query=b"q=other")
    assert inner.calls == 3
    assert (await call(app, query=b"q=known"))[0] == 200
    assert inner.calls == 3

    clock.now += 2.5  # past twice the check interval with no confirmation
    await call(app, query=b"q=known")
    assert inner.calls == 4
