"""The SMS and push sink (devstack/provider_sink.py): its memory of idempotency keys, and its
HTTP/1.1 server."""

from __future__ import annotations

import asyncio
import re

import httpx
import orjson
import pytest

from devstack import provider_sink


def test_the_oldest_keys_are_forgotten_beyond_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provider_sink, "IDEMPOTENCY_KEYS_KEPT", 3)
    sink = provider_sink.Sink()
    for n in range(5):
        sink.remember("push", f"k{n}", b"%d" % n)
    sink.remember("sms", "k4", b"sms")
    assert list(sink.answers) == [("push", "k3"), ("push", "k4"), ("sms", "k4")]
    assert sink.answers[("push", "k4")] == b"4"


# --- the HTTP/1.1 server ----------------------------------------------------------------------


async def _exchange(url: str, raw: bytes, *, until_closed: bool = False) -> bytes:
    """Send `raw` on one connection and read what comes back (until closed, or briefly)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(raw)
    await writer.drain()
    received = b""
    try:
        while True:
            async with asyncio.timeout(5 if until_closed else 0.5):
                chunk = await reader.read(65536)
            if not chunk:
                break
            received += chunk
    except TimeoutError:
        assert not until_closed, "the connection stayed open"
    writer.close()
    return received


def _sms(reference: str) -> bytes:
    return orjson.dumps({"to": "+4930123456", "body": "Hello", "reference": reference})


async def test_pipelined_requests_are_answered_in_order_on_one_connection() -> None:
    first, second = _sms("r-1"), _sms("r-2")
    raw = (
        b"POST /sms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s"
        % (len(first), first)
        + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        + b"POST /sms HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(second), second)
    )
    async with provider_sink.serving() as url:
        received = await _exchange(url, raw)
        statuses = re.findall(rb"HTTP/1.1 (\d+)", received)
        assert statuses == [b"202", b"200", b"202"]
        async with httpx.AsyncClient(base_url=url) as client:
            listed = (await client.get("/messages", params={"channel": "sms"})).json()
    assert [m["request"]["reference"] for m in listed["messages"]] == ["r-2", "r-1"]


async def test_unknown_routes_methods_and_bad_requests_get_clear_errors() -> None:
    async with provider_sink.serving() as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/nowhere")).status_code == 404
        wrong = await client.put("/sms", content=b"{}")
        assert wrong.status_code == 405
        assert wrong.headers["Allow"] == "POST"
        assert (await client.get("/messages", params={"channel": "fax"})).status_code == 400
        assert (await client.get("/messages", params={"limit": "many"})).status_code == 400
        assert (await client.post("/push", content=b"[1]")).json()["error"] == "invalid_request"
        head = await client.head("/healthz")
        assert head.status_code == 200
        assert head.content == b""
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        too_large = await client.post("/sms", content=b"x" * (provider_sink.MAX_BODY_BYTES + 1))
        assert too_large.status_code == 413
        assert too_large.headers["Connection"] == "close"
    async with provider_sink.serving() as url:
        garbage = await _exchange(url, b"NOT HTTP AT ALL\r\n\r\n", until_closed=True)
        assert garbage.startswith(b"HTTP/1.1 400 ")
        closing = await _exchange(
            url, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", until_closed=True
        )
        assert closing.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Connection: close" in closing


async def test_closing_the_server_closes_its_idle_connections() -> None:
    async with provider_sink.serving() as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.readuntil(b'{"status":"ok"}')
    async with asyncio.timeout(5):
        assert await reader.read() == b""
    writer.close()
