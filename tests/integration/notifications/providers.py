"""An SMS and push provider for the worker tests, on a real HTTP port, that a test can make
fail, hold or refuse.

Like a provider with idempotency support, it accepts a repeated `Idempotency-Key` once (the
first answer is given again). `requests` keeps every request that reached it; `accepted` the
messages it took, one per key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from devstack.ports import HOST, free_port


@dataclass
class Request:
    path: str
    key: str | None
    body: dict[str, Any]
    raw: str


@dataclass
class ProviderDouble:
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    accepted: dict[str, Request] = field(default_factory=dict)
    failures: dict[str, list[int]] = field(default_factory=dict)
    """Per needle (any text of the request body, such as an order id): statuses to answer
    with, in order, before accepting."""
    holds: dict[str, asyncio.Event] = field(default_factory=dict)
    """Per needle: the first such request waits for this event before it is answered."""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}/{path}"

    def fail(self, needle: str, *statuses: int) -> None:
        self.failures[needle] = list(statuses)

    def hold(self, needle: str) -> asyncio.Event:
        self.holds[needle] = asyncio.Event()
        return self.holds[needle]

    def requests_for(self, needle: str, path: str | None = None) -> list[Request]:
        return [r for r in self.requests if needle in r.raw and path in (None, r.path)]

    def accepted_for(self, needle: str, path: str | None = None) -> list[Request]:
        return [r for r in self.accepted.values() if needle in r.raw and path in (None, r.path)]

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.text()
        body = orjson.loads(raw)
        key = request.headers.get("Idempotency-Key")
        self.requests.append(Request(request.path, key, body, raw))
        self.arrived.set()
        needle = next((n for n in self.holds if n in raw), None)
        if needle is not None:
            await self.holds.pop(needle).wait()
        statuses = next((s for n, s in self.failures.items() if n in raw), None)
        if statuses:
            status = statuses.pop(0)
            return web.json_response({"error": f"scripted {status}"}, status=status)
        if key is not None and key in self.accepted:
            return web.json_response({"id": key, "status": "accepted", "repeat": True}, status=202)
        if key is not None:
            self.accepted[key] = Request(request.path, key, body, raw)
        return web.json_response({"id": key, "status": "accepted"}, status=202)


@asynccontextmanager
async def provider_double() -> AsyncIterator[ProviderDouble]:
    double = ProviderDouble(port=free_port())
    app = web.Application()
    app.router.add_post("/sms", double.handle)
    app.router.add_post("/push", double.handle)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, HOST, double.port)
    await site.start()
    try:
        yield double
    finally:
        for event in double.holds.values():
            event.set()
        await runner.cleanup()
