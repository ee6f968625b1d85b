"""The generator's lean HTTP/1.1 client against a small server on a local port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import uvloop

from bench import http1

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """Answers with `handler`; counts the connections it accepted and the requests read."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request

    @property
    def base(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"


Serve = Callable[[Handler], Awaitable[Server]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[Server] = []

    async def start(handler: Handler) -> Server:
        server = Server(handler)
        server.server = await asyncio.start_server(server._accept, "127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        assert server.server is not None
        server.server.close()


def answer(body: bytes, *extra: bytes) -> bytes:
    head = [b"HTTP/1.1 201 Created", b"Content-Type: application/json", *extra]
    head.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(head) + b"\r\n\r\n" + body


async def test_answers_come_back_and_the_connection_is_kept(serve: Serve) -> None:
    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await server.read_request(reader)) is not None:
            writer.write(answer(b'{"n": %d}' % len(request), b"Retry-After: 2"))

    server = await serve(keep_alive)
    client = http1.Client(server.base)
    first = await client.request("POST", "/orders", {"Authorization": "Bearer t"}, b'{"a": 1}')
    second = await client.request("POST", "/orders", {"Authorization": "Bearer t"}, b"{}")
    client.close()

    assert first[0] == 201
    assert second[0] == 201
    assert first[1]["retry-after"] == "2"
    assert first[2].startswith(b'{"n": ')
    assert server.connections == 1
    request = server.requests[0]
    assert request.startswith(b"POST /orders HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nAuthorization: Bearer t\r\n" in request
    assert b"\r\nContent-Length: 8\r\n\r\n" in request
    assert request.endswith(b'{"a": 1}')


async def test_a_chunked_answer_is_read_whole(serve: Serve) -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await server.read_request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")

    server = await serve(chunked)
    client = http1.Client(server.base)
    assert await client.request("GET", "/x", {}) == (
        200,
        {"transfer-encoding": "chunked"},
        b"abcde",
    )
    client.close()


async def test_a_connection_the_server_closes_is_not_used_again(serve: Serve) -> None:
    async def one_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer(b"{}", b"Connection: close"))

    async def idle_closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer(b"{}"))  # keep-alive, then closed while idle

    server = await serve(one_each)
    client = http1.Client(server.base)
    for _ in range(3):
        assert (await client.request("POST", "/orders", {}, b"{}"))[0] == 201
    assert server.connections == 3
    client.close()

    server = await serve(idle_closed)
    client = http1.Client(server.base, timeout=5)
    await client.request("POST", "/orders", {}, b"{}")
    await asyncio.sleep(0.05)  # the server's close arrives while the connection is idle
    assert (await client.request("POST", "/orders", {}, b"{}"))[0] == 201
    assert server.connections == 2
    client.close()


async def test_an_answer_cut_short_is_an_error(serve: Serve) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{")
        await writer.drain()

    server = await serve(cut)
    client = http1.Client(server.base)
    with pytest.raises(http1.ConnectionLost):
        await client.request("POST", "/orders", {}, b"{}")
    client.close()


async def test_no_answer_in_time_is_a_timeout(serve: Serve) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await reader.read()  # until the client, given up, closes the connection

    server = await serve(silent)
    client = http1.Client(server.base, timeout=0.2)
    with pytest.raises(TimeoutError):
        await client.request("POST", "/orders", {}, b"{}")
    client.close()


def test_on_uvloop_as_the_generator_runs() -> None:
    async def exchange() -> tuple[int, dict[str, str], bytes]:
        async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer(b"{}"))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(one, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = http1.Client(f"http://127.0.0.1:{port}", timeout=5)
        try:
            return await client.request("GET", "/", {})
        finally:
            client.close()
            server.close()

    assert uvloop.run(exchange()) == (
        201,
        {"content-type": "application/json", "content-length": "2"},
        b"{}",
    )


def test_only_plain_http_urls() -> None:
    with pytest.raises(ValueError, match="http://"):
        http1.Client("https://example.com")
