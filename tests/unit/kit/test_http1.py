"""The lean HTTP/1.1 client (services/kit/http1.py) against small servers on local ports."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
import uvloop

from services.kit import http1
from tests.unit.http_servers import (
    HOST,
    Handler,
    Serve,
    Server,
    Tls,
    answer,
    answering_each,
    keep_answering,
    self_signed,
)


async def exchanges(port: int, method: str, times: int, body: bytes = b"") -> list[http1.Answer]:
    """`times` requests in a row on one client."""
    client = http1.Client()
    try:
        return [await client.request(method, HOST, port, "/x", body=body) for _ in range(times)]
    finally:
        client.close()


def answering_once(server_of: Callable[[], Server], raw: bytes, *, hold: bool = False) -> Handler:
    """Reads one request and writes `raw`; then closes the connection, or with `hold` keeps it
    until the client closes it."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server_of().read_request(reader)
        writer.write(raw)
        await writer.drain()
        if hold:
            await reader.read()

    return handler


async def test_answers_come_back_and_the_connection_is_kept(serve: Serve) -> None:
    server = await serve(keep_answering(lambda: server, b"Retry-After: 2"))
    client = http1.Client()
    headers = [("Authorization", "Bearer t"), ("X-Name", "Zoë")]
    first = await client.request("POST", HOST, server.port, "/orders?a=%20", headers, b'{"a": 1}')
    second = await client.request("GET", HOST, server.port, "/orders")
    client.close()

    assert (first.status, second.status) == (201, 201)
    assert first.header(b"retry-after") == b"2"
    assert (b"Retry-After", b"2") in first.headers
    assert first.body.startswith(b'{"n": ')
    assert server.connections == 1
    post, get = server.requests
    host = f"Host: 127.0.0.1:{server.port}".encode()
    assert post.startswith(b"POST /orders?a=%20 HTTP/1.1\r\n" + host + b"\r\n")
    assert b"\r\nAuthorization: Bearer t\r\nX-Name: Zo\xc3\xab\r\n" in post
    assert b"\r\nContent-Length: 8\r\n\r\n" in post
    assert post.endswith(b'{"a": 1}')
    # A GET without a body says no length; a POST without one says 0.
    assert b"content-length" not in get.lower()


async def test_a_write_without_a_body_says_its_length_is_zero(serve: Serve) -> None:
    server = await serve(keep_answering(lambda: server))
    client = http1.Client()
    await client.request("DELETE", HOST, server.port, "/orders/1")
    await client.request("POST", HOST, server.port, "/orders/1/cancel")
    client.close()
    assert [b"\r\nContent-Length: 0\r\n\r\n" in request for request in server.requests] == [
        True,
        True,
    ]


async def test_a_chunked_answer_is_read_whole(serve: Serve) -> None:
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    server = await serve(answering_each(lambda: server, raw))
    got, again = await exchanges(server.port, "GET", 2)
    assert (got.status, got.headers, got.body) == (
        200,
        [(b"Transfer-Encoding", b"chunked")],
        b"abcde",
    )
    assert again.body == b"abcde"
    assert server.connections == 1


async def test_an_answer_without_a_length_ends_with_its_connection(serve: Serve) -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"
    server = await serve(answering_once(lambda: server, raw))
    (got,) = await exchanges(server.port, "GET", 1)
    assert (got.status, got.body) == (200, b"all of it")


async def test_an_interim_answer_is_skipped(serve: Serve) -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"{}")
    server = await serve(answering_each(lambda: server, raw))
    got, again = await exchanges(server.port, "POST", 2, b"{}")
    assert (got.status, got.body, again.status) == (201, b"{}", 201)
    assert server.connections == 1


async def test_a_head_answer_has_no_body_and_its_connection_is_closed(serve: Serve) -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5093\r\n\r\n"
    server = await serve(answering_each(lambda: server, raw))
    got, again = await exchanges(server.port, "HEAD", 2)
    assert (got.status, got.header(b"content-length"), got.body) == (200, b"5093", b"")
    assert again.status == 200
    assert server.connections == 2


async def test_connections_are_closed_when_the_answer_or_the_caller_says_so(
    serve: Serve,
) -> None:
    server = await serve(keep_answering(lambda: server, b"Connection: close"))
    client = http1.Client()
    for _ in range(3):
        assert (await client.request("POST", HOST, server.port, "/orders", body=b"{}")).status
    assert server.connections == 3

    kept = await serve(keep_answering(lambda: kept))
    statuses = []
    for _ in range(3):
        got = await client.request("GET", HOST, kept.port, "/x", reuse=lambda _: False)
        statuses.append(got.status)
    client.close()
    assert statuses == [201, 201, 201]
    assert kept.connections == 3


async def test_an_idle_connection_the_server_closed_is_not_written_to(serve: Serve) -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer(b"{}"))  # keep-alive, then closed while idle

    server = await serve(once)
    client = http1.Client()
    await client.request("POST", HOST, server.port, "/orders", body=b"{}")
    await asyncio.sleep(0.05)  # the server's close arrives while the connection is idle
    assert (await client.request("POST", HOST, server.port, "/orders", body=b"{}")).status == 201
    client.close()
    assert server.connections == 2
    assert len(server.requests) == 2


async def test_an_idle_connection_is_dropped_after_the_keepalive(serve: Serve) -> None:
    server = await serve(keep_answering(lambda: server))
    client = http1.Client(keepalive_seconds=0.1)
    await client.request("GET", HOST, server.port, "/x")
    await client.request("GET", HOST, server.port, "/x")
    assert server.connections == 1
    await asyncio.sleep(0.15)
    await client.request("GET", HOST, server.port, "/x")
    client.close()
    assert server.connections == 2


async def test_requests_share_at_most_the_limit_of_connections(serve: Serve) -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await server.read_request(reader) is not None:
            await asyncio.sleep(0.02)
            writer.write(answer(b"{}"))

    server = await serve(slow)
    client = http1.Client(limit=3)
    answers = await asyncio.gather(
        *(client.request("GET", HOST, server.port, "/x") for _ in range(12))
    )
    client.close()
    assert [a.status for a in answers] == [201] * 12
    assert server.connections == 3


async def test_an_answer_cut_short_is_a_lost_connection(serve: Serve) -> None:
    raw = b"HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{"
    server = await serve(answering_once(lambda: server, raw))
    client = http1.Client()
    with pytest.raises(http1.ConnectionLost):
        await client.request("POST", HOST, server.port, "/orders", body=b"{}")
    client.close()


async def test_an_unreadable_answer_is_a_lost_connection(serve: Serve) -> None:
    server = await serve(answering_once(lambda: server, b"NOT HTTP AT ALL\r\n\r\n", hold=True))
    client = http1.Client()
    with pytest.raises(http1.ConnectionLost, match="unreadable"):
        await client.request("GET", HOST, server.port, "/x")
    client.close()


async def test_a_port_nobody_listens_on_is_a_failed_connect() -> None:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        client = http1.Client()
        with pytest.raises(http1.ConnectFailed):
            await client.request("POST", HOST, port, "/orders", body=b"{}")
    client.close()


async def test_a_request_cancelled_by_its_timeout_closes_its_connection(serve: Serve) -> None:
    closed = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await reader.read()  # until the client, given up, closes the connection
        closed.set()

    server = await serve(silent)
    client = http1.Client()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await client.request("POST", HOST, server.port, "/orders", body=b"{}")
    async with asyncio.timeout(5):
        await closed.wait()
    client.close()


def test_a_header_with_a_line_break_is_refused() -> None:
    async def refused() -> None:
        client = http1.Client()
        try:
            await client.request("GET", HOST, 1, "/x", [("X-Bad", "a\r\nHost: evil")])
        finally:
            client.close()

    with pytest.raises(ValueError, match="line break"):
        asyncio.run(refused())


@pytest.mark.parametrize("over_tls", [False, True], ids=["plain", "tls"])
def test_on_uvloop(tls: Tls, over_tls: bool) -> None:
    async def exchange() -> http1.Answer:
        async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer(b"{}"))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(one, HOST, 0, ssl=tls.server if over_tls else None)
        port = server.sockets[0].getsockname()[1]
        client = http1.Client()
        try:
            return await client.request(
                "GET", HOST, port, "/", tls=tls.client if over_tls else None
            )
        finally:
            client.close()
            server.close()

    got = uvloop.run(exchange())
    assert (got.status, got.body) == (201, b"{}")
    assert got.headers == [(b"Content-Type", b"application/json"), (b"Content-Length", b"2")]


def test_an_ipv6_host_is_written_in_brackets() -> None:
    request = http1._message("GET", "fd00::5", 3002, "/orders", [], b"")
    assert request.startswith(b"GET /orders HTTP/1.1\r\nHost: [fd00::5]:3002\r\n")
    assert http1._message("GET", "orders", 80, "/", [], b"").startswith(
        b"GET / HTTP/1.1\r\nHost: orders\r\n"
    )


async def test_a_request_over_tls_is_answered_and_its_connection_kept(
    serve: Serve, tls: Tls
) -> None:
    server = await serve(keep_answering(lambda: server), tls.server)
    client = http1.Client()
    first = await client.request("POST", HOST, server.port, "/push", body=b"{}", tls=tls.client)
    second = await client.request("POST", HOST, server.port, "/push", body=b"{}", tls=tls.client)
    client.close()
    assert (first.status, second.status) == (201, 201)
    assert server.connections == 1
    assert server.requests[0].startswith(
        b"POST /push HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % server.port
    )


async def test_a_certificate_the_context_does_not_trust_is_a_failed_connect(
    serve: Serve, tls: Tls
) -> None:
    server = await serve(keep_answering(lambda: server), tls.server)
    client = http1.Client()
    with pytest.raises(http1.ConnectFailed, match="CERTIFICATE_VERIFY_FAILED"):
        await client.request(
            "POST", HOST, server.port, "/push", body=b"{}", tls=ssl.create_default_context()
        )
    client.close()
    assert server.requests == []


async def test_a_certificate_for_another_name_is_a_failed_connect(
    serve: Serve, tmp_path: Path
) -> None:
    other = self_signed(tmp_path, ("other.example",))
    server = await serve(keep_answering(lambda: server), other.server)
    client = http1.Client()
    with pytest.raises(http1.ConnectFailed, match="mismatch"):
        await client.request("POST", HOST, server.port, "/push", body=b"{}", tls=other.client)
    client.close()
    assert server.requests == []


async def test_plain_http_to_a_tls_port_is_a_lost_connection(serve: Serve, tls: Tls) -> None:
    server = await serve(keep_answering(lambda: server), tls.server)
    client = http1.Client()
    with pytest.raises(http1.ConnectionLost):
        await client.request("POST", HOST, server.port, "/push", body=b"{}")
    client.close()


def test_the_default_port_of_the_scheme_is_left_out_of_the_host() -> None:
    assert http1._message("GET", "sms.example.com", 443, "/", [], b"", tls=True).startswith(
        b"GET / HTTP/1.1\r\nHost: sms.example.com\r\n"
    )
    assert http1._message("GET", "sms.example.com", 443, "/", [], b"").startswith(
        b"GET / HTTP/1.1\r\nHost: sms.example.com:443\r\n"
    )
    assert http1._message("GET", "sms.example.com", 80, "/", [], b"", tls=True).startswith(
        b"GET / HTTP/1.1\r\nHost: sms.example.com:80\r\n"
    )
