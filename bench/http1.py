"""The load generator's client for the requests it sends at its fixed rate: HTTP/1.1 over pooled
keep-alive connections, with httptools (uvicorn's parser) reading the answers.

The generator shares the two cores with the stack it measures, so what it spends per request
is CPU the stack does not get. aiohttp's client took about 150 µs of the generator's CPU per
create (its request and response objects, multidicts, URL handling, timers), this one about 30
(a request written as one buffer, the answer parsed by httptools): docs/benchmarks-analysis.md.
It knows no redirects, cookies, proxies or compression, which the creates do not use; everything
else the generator sends (logins, registrations, reads) still goes through aiohttp.

A connection answers one request at a time. One the server closed, or that fails, is dropped,
never reused; a request is not retried (the caller counts it as refused), and one with no
answer within `timeout` seconds raises TimeoutError.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools


class ConnectionLost(ConnectionError):
    """The connection closed before the whole answer arrived."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection and the answer it is reading."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: asyncio.Future[tuple[int, dict[str, str], bytes]] | None = None
        self.reusable = True
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    # asyncio's callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's, though they have their methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionLost(f"unreadable answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionLost("the server closed the connection"))

    # httptools' callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.reusable = self.parser.should_keep_alive()
        answer, self.answer = self.answer, None
        result = (self.parser.get_status_code(), self._headers, b"".join(self._body))
        self._headers, self._body = {}, []
        if answer is not None and not answer.done():
            answer.set_result(result)

    def _fail(self, exc: Exception) -> None:
        self.reusable = False
        answer, self.answer = self.answer, None
        if answer is not None and not answer.done():
            answer.set_exception(exc)

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()


class Client:
    """Requests to one server (`base`, an http:// URL) over at most `limit` connections."""

    def __init__(self, base: str, *, limit: int = 200, timeout: float = 30.0) -> None:
        url = urlsplit(base)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"an http:// URL with a host is needed, not {base!r}")
        self.host = url.hostname
        self.port = url.port or 80
        self.timeout = timeout
        self._host_header = url.netloc.encode("latin-1")
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(limit)

    async def request(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request and read its whole answer: (status, headers in lower case, body)."""
        head = [
            b"%s %s HTTP/1.1\r\nHost: %s\r\n" % (method.encode(), path.encode(), self._host_header)
        ]
        head.extend(
            b"%s: %s\r\n" % (name.encode(), value.encode()) for name, value in headers.items()
        )
        head.append(b"Content-Length: %d\r\n\r\n" % len(body))
        message = b"".join(head) + body
        async with self._slots, asyncio.timeout(self.timeout):
            connection = self._pooled() or await self._connect()
            assert connection.transport is not None
            answer: asyncio.Future[tuple[int, dict[str, str], bytes]]
            answer = asyncio.get_running_loop().create_future()
            connection.answer = answer
            try:
                connection.transport.write(message)
                result = await answer
            except BaseException:
                connection.close()
                raise
            if connection.reusable:
                self._idle.append(connection)
            else:
                connection.close()
            return result

    def _pooled(self) -> _Connection | None:
        """An idle connection still open, if there is one (the server may have closed some)."""
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable:
                return connection
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, self.host, self.port)
        return connection

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()
