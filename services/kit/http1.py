"""A lean HTTP/1.1 client: pooled keep-alive connections, httptools (uvicorn's parser) reading the
answers.

The gateway sends every upstream request through it (gateway/service.py), the SMS and push
workers their providers' requests (notifications/providers.py), and the load generator its
creates. aiohttp's client took about 150 µs of CPU per request here (its request
and response objects, multidicts, URL handling, timers, signals), the gateway's whole proxied
request about 450; through this client the proxied request takes about 325
(docs/benchmarks-analysis.md). It speaks HTTP/1.1 over plain TCP, or over TLS with the
`ssl.SSLContext` a request names (the server's name checked against its certificate as the
context says); no redirects, cookies, proxies or compression: an answer's body comes back as it
was sent, matching its Content-Encoding.

A request, its head and body, is written in one write, on a connection that has no other
request outstanding. The client writes `Host` and `Content-Length` (the caller's headers must
not); every other header is the caller's, written as UTF-8.

An idle connection is reused last in, first out, while the server keeps it open and for at most
`keepalive_seconds`; keep that below the server's own keep-alive timeout, so the client drops an
idle connection before the server closes it under a request. One the server closed meanwhile is
dropped without being written to. A connection is not reused after an answer that says it closes
(`Connection: close`, HTTP/1.0), after an answer to HEAD, after an answer `reuse` refuses, or
after any failure.

Failures, by what they say about the request:
- `ConnectFailed`: no connection could be opened (refused, unreachable, a name not found, a TLS
  handshake that failed or a certificate the context does not trust). Nothing was sent.
- `ConnectionLost`: the connection closed, or its answer could not be read, after the request
  was written. It may have arrived.
Timeouts are the caller's (`asyncio.timeout` around `request`): a request cancelled while it is
out closes its connection.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

import httptools

_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_BODYLESS_STATUSES = frozenset({204, 304})


class Http1Error(ConnectionError):
    """A request that got no answer."""


class ConnectFailed(Http1Error):
    """No connection could be opened: nothing was sent."""


class ConnectionLost(Http1Error):
    """The connection closed, or its answer was unreadable, after the request was written."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    """As they came: names in the server's case, repeats kept, in order."""
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        """The first value of the header `name` (lower case), None without one."""
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


class _Connection(asyncio.Protocol):
    """One keep-alive connection and the answer it is reading."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reusable = True
        self.idle_since = 0.0
        self._answer: asyncio.Future[Answer] | None = None
        self._head_only = False
        self._until_close = False
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []

    def expect(self, answer: asyncio.Future[Answer], *, head_only: bool) -> None:
        """Deliver the next answer to `answer`; `head_only` for a HEAD request's (no body)."""
        self._answer = answer
        self._head_only = head_only
        self._until_close = False
        self._headers, self._body = [], []

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    # asyncio's callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's, though they have their methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionLost(f"unreadable answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self._until_close and self._answer is not None:
            # An answer without a length ends where the connection does.
            self._finish(b"".join(self._body))
            return
        self._fail(ConnectionLost("the server closed the connection"))

    # httptools' callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            return  # an interim answer (100 Continue): the final one follows
        if self._head_only:
            # httptools cannot be told the answer has no body: the parser would wait for
            # Content-Length bytes, so the answer ends here, and the connection with it.
            self.reusable = False
            self._finish(b"")
            return
        if status not in _BODYLESS_STATUSES and not any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self._headers
        ):
            self._until_close = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self._headers, self._body = [], []
            return
        if self._answer is None:
            return  # a HEAD answer, already delivered
        self.reusable = self.reusable and self.parser.should_keep_alive()
        self._finish(b"".join(self._body))

    def _finish(self, body: bytes) -> None:
        answer, self._answer = self._answer, None
        self._until_close = False
        if answer is not None and not answer.done():
            answer.set_result(Answer(self.parser.get_status_code(), self._headers, body))

    def _fail(self, exc: Exception) -> None:
        self.reusable = False
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(exc)


class _Origin:
    """The idle connections to one host and port, over TLS with `tls`."""

    def __init__(
        self, host: str, port: int, keepalive_seconds: float, tls: ssl.SSLContext | None
    ) -> None:
        self.host = host
        self.port = port
        self.keepalive_seconds = keepalive_seconds
        self.tls = tls
        self.idle: list[_Connection] = []

    def pooled(self) -> _Connection | None:
        """The idle connection used last, if one is still open and not idle for too long."""
        expired = time.monotonic() - self.keepalive_seconds
        while self.idle:
            connection = self.idle.pop()
            transport = connection.transport
            if connection.closed or transport is None or transport.is_closing():
                continue
            if connection.idle_since < expired:
                connection.close()
                continue
            return connection
        return None

    async def connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                _Connection,
                self.host,
                self.port,
                ssl=self.tls,
                server_hostname=self.host if self.tls is not None else None,
            )
        except OSError as exc:  # refused, unreachable, a name not found, TLS (ssl.SSLError)
            raise ConnectFailed(f"no connection to {self.host}:{self.port}: {exc}") from exc
        return connection

    def put(self, connection: _Connection) -> None:
        connection.idle_since = time.monotonic()
        self.idle.append(connection)

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


class Client:
    """Requests over at most `limit` connections at once; a request waits for a free one."""

    def __init__(self, *, limit: int = 100, keepalive_seconds: float = 15.0) -> None:
        self.keepalive_seconds = keepalive_seconds
        self.closed = False
        self._slots = asyncio.Semaphore(limit)
        self._origins: dict[tuple[str, int, ssl.SSLContext | None], _Origin] = {}

    async def request(
        self,
        method: str,
        host: str,
        port: int,
        target: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        *,
        tls: ssl.SSLContext | None = None,
        reuse: Callable[[Answer], bool] | None = None,
    ) -> Answer:
        """Send `method target` (the path and query, already percent-encoded) to `host:port`,
        over TLS with `tls`, and read the whole answer; `reuse(answer)` False closes the
        connection after it. Connections are pooled by host, port and context: pass the same
        `ssl.SSLContext` for every request to an origin."""
        message = _message(method, host, port, target, headers, body, tls=tls is not None)
        key = (host, port, tls)
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = _Origin(host, port, self.keepalive_seconds, tls)
        async with self._slots:
            connection = origin.pooled() or await origin.connect()
            answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
            connection.expect(answer, head_only=method == "HEAD")
            try:
                assert connection.transport is not None
                connection.transport.write(message)
                result = await answer
            except BaseException:
                connection.close()
                raise
            if connection.reusable and not self.closed and (reuse is None or reuse(result)):
                origin.put(connection)
            else:
                connection.close()
            return result

    def close(self) -> None:
        """Close every idle connection; one still out closes when its answer is in."""
        self.closed = True
        for origin in self._origins.values():
            origin.close()


def _message(
    method: str,
    host: str,
    port: int,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    *,
    tls: bool = False,
) -> bytes:
    name = f"[{host}]" if ":" in host else host  # an IPv6 address
    authority = name if port == (443 if tls else 80) else f"{name}:{port}"
    head = [f"{method} {target} HTTP/1.1\r\nHost: {authority}\r\n"]
    for name, value in headers:
        head.append(f"{name}: {value}\r\n")
    if body or method not in _NO_BODY_METHODS:
        head.append(f"Content-Length: {len(body)}\r\n")
    head.append("\r\n")
    text = "".join(head)
    # One line break per line written: a break inside a value would start a header of its own.
    lines = len(head) + 1
    if text.count("\n") != lines or text.count("\r") != lines:
        raise ValueError("a request line or header holds a line break")
    return text.encode() + body
