"""The generator's Socket.IO client against a small Engine.IO 4 server on a local port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from bench.live_client import LiveClient

Script = Callable[[web.WebSocketResponse, str], Awaitable[None]]


class Server:
    """Opens each WebSocket as the gateway's server does, then runs `script` with the token the
    client joined with; keeps every text frame the client sent."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.received: list[str] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        assert request.query["EIO"] == "4"
        assert request.query["transport"] == "websocket"
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str('0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000}')
        joined = await ws.receive_str()
        self.received.append(joined)
        token = orjson.loads(joined[2:])["token"]
        await self.script(ws, token)
        async for frame in ws:
            if frame.type == aiohttp.WSMsgType.TEXT:
                self.received.append(frame.data)
        return ws


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], Awaitable[Server]]]:
    runners: list[web.AppRunner] = []

    async def start(script: Script) -> Server:
        server = Server(script)
        app = web.Application()
        app.router.add_get("/socket.io/", server.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        server.url = f"http://127.0.0.1:{port}"
        runners.append(runner)
        return server

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_pushes_reach_their_handlers_and_pings_are_answered(
    serve: Callable[[Script], Awaitable[Server]],
) -> None:
    async def script(ws: web.WebSocketResponse, token: str) -> None:
        await ws.send_str("2")  # a ping before the namespace answers
        await ws.send_str('40{"sid":"s1"}')
        await ws.send_str('42["order.updated",{"orderId":"o-1","status":"CONFIRMED"}]')
        await ws.send_str('42["notification.created",{"id":"n-1"}]')
        await ws.send_str('42["two",1,"b"]')
        await ws.send_str('427["acked",{"n":1}]')
        await ws.send_str("2")

    server = await serve(script)
    got: list[tuple[str, Any]] = []
    pushed = asyncio.Event()
    client = LiveClient()
    client.on("order.updated", lambda data: got.append(("order.updated", data)))
    client.on("two", lambda *arguments: got.append(("two", arguments)))

    def acked(data: Any) -> None:
        got.append(("acked", data))
        pushed.set()

    client.on("acked", acked)
    async with aiohttp.ClientSession() as session:
        await client.connect(session, server.url, "tok-1")
        assert client.connected
        async with asyncio.timeout(5):
            await pushed.wait()
        await client.disconnect()
    assert not client.connected
    assert got == [
        ("order.updated", {"orderId": "o-1", "status": "CONFIRMED"}),
        ("two", (1, "b")),
        ("acked", {"n": 1}),
    ]
    assert server.received[0] == '40{"token":"tok-1"}'
    assert server.received[1:3] == ["3", "3"]
    assert server.received[-1] == "41"


async def test_a_refused_token_raises(serve: Callable[[Script], Awaitable[Server]]) -> None:
    async def script(ws: web.WebSocketResponse, token: str) -> None:
        await ws.send_str('44{"message":"The token has expired."}')

    server = await serve(script)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ConnectionRefusedError, match="expired"):
            await LiveClient().connect(session, server.url, "old")


async def test_the_server_ending_the_connection_calls_the_disconnect_handler(
    serve: Callable[[Script], Awaitable[Server]],
) -> None:
    async def script(ws: web.WebSocketResponse, token: str) -> None:
        await ws.send_str('40{"sid":"s1"}')
        await ws.send_str("41")
        await ws.close()

    server = await serve(script)
    ended = asyncio.Event()
    client = LiveClient()
    client.on("disconnect", ended.set)
    async with aiohttp.ClientSession() as session:
        await client.connect(session, server.url, "tok")
        async with asyncio.timeout(5):
            await ended.wait()
        assert not client.connected
        client.off("disconnect")
        await client.disconnect()
