"""The SMS and push providers' HTTP sender (notifications/providers.py) against small local
servers: what it sends, and how each answer or failure is classed for the worker."""

from __future__ import annotations

import asyncio
import socket
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from services.notifications.domain import Channel, EventType, OrderFacts
from services.notifications.messages import NotificationMessage, template_data
from services.notifications.providers import (
    HttpSender,
    PermanentFailure,
    TransientFailure,
    provider_address,
    push_body,
)
from services.notifications.rendering import Rendered
from tests.unit.http_servers import HOST, Serve, Tls, answer, answering_each

DELIVERY = uuid.UUID(int=7)
CONTENT = Rendered(text="Your order 5b0f6d1e is confirmed.", title="Order confirmed")


def _message() -> NotificationMessage:
    return NotificationMessage(
        delivery_id=DELIVERY,
        notification_id=uuid.UUID(int=2),
        event_id=uuid.UUID(int=3),
        channel=Channel.PUSH,
        event_type=EventType.CONFIRMED,
        order_id="5b0f6d1e-0000-4000-8000-000000000001",
        user_id="u-1",
        recipient="u-1",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        data=template_data(
            OrderFacts(
                event_type=EventType.CONFIRMED,
                order_id="5b0f6d1e-0000-4000-8000-000000000001",
                user_id="u-1",
                version=2,
                status="CONFIRMED",
                occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                total=Decimal("12.50"),
                currency="EUR",
                items=(("Widget", 2),),
            ),
            "Order confirmed",
            "Your order 5b0f6d1e is confirmed.",
        ),
    )


async def test_a_message_is_posted_as_json_with_its_key_and_token_on_one_connection(
    serve: Serve,
) -> None:
    server = await serve(
        answering_each(lambda: server, answer(b'{"id": "p-1"}', status=b"202 Accepted"))
    )
    sender = HttpSender(url=f"http://{HOST}:{server.port}/v1/push?app=a", token="t", body=push_body)
    first = await sender.send(_message(), CONTENT)
    second = await sender.send(_message(), CONTENT)
    await sender.close()

    assert first == second == '202 {"id": "p-1"}'
    assert server.connections == 1
    head, body = server.requests[0].split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/push?app=a HTTP/1.1"
    assert lines[1] == b"Host: 127.0.0.1:%d" % server.port
    assert b"Authorization: Bearer t" in lines
    assert b"Content-Type: application/json" in lines
    assert b"User-Agent: RealTimeOrder-notifications" in lines
    assert b"Idempotency-Key: " + str(DELIVERY).encode() in lines
    assert orjson.loads(body) == push_body(_message(), CONTENT)


@pytest.mark.parametrize(
    ("status", "failure"),
    [
        (b"503 Service Unavailable", TransientFailure),
        (b"429 Too Many Requests", TransientFailure),
        (b"408 Request Timeout", TransientFailure),
        (b"400 Bad Request", PermanentFailure),
        (b"302 Found", PermanentFailure),
    ],
)
async def test_an_answer_that_is_not_2xx_is_a_failure_by_its_status(
    serve: Serve, status: bytes, failure: type[Exception]
) -> None:
    server = await serve(answering_each(lambda: server, answer(b'{"error": "no"}', status=status)))
    sender = HttpSender(url=f"http://{HOST}:{server.port}/sms", token=None, body=push_body)
    with pytest.raises(failure) as raised:
        await sender.send(_message(), CONTENT)
    await sender.close()
    assert str(raised.value) == f'{status[:3].decode()} {{"error": "no"}}'
    assert b"authorization" not in server.requests[0].lower()


async def test_no_connection_no_answer_and_no_answer_in_time_are_transient() -> None:
    with socket.socket() as sock:
        sock.bind((HOST, 0))  # bound, never listening: connections are refused
        refused = HttpSender(
            url=f"http://{HOST}:{sock.getsockname()[1]}/push", token=None, body=push_body
        )
        with pytest.raises(TransientFailure, match="provider unavailable: ConnectFailed"):
            await refused.send(_message(), CONTENT)
        await refused.close()

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the request arrived; no answer comes
        writer.close()

    closing = await asyncio.start_server(hang_up, HOST, 0)
    lost = HttpSender(
        url=f"http://{HOST}:{closing.sockets[0].getsockname()[1]}/push", token=None, body=push_body
    )
    with pytest.raises(TransientFailure, match="ConnectionLost"):
        await lost.send(_message(), CONTENT)
    await lost.close()
    closing.close()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    server = await asyncio.start_server(silent, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    slow = HttpSender(url=f"http://{HOST}:{port}/push", token=None, body=push_body, timeout=0.2)
    with pytest.raises(TransientFailure, match="TimeoutError"):
        await slow.send(_message(), CONTENT)
    await slow.close()
    server.close()


async def test_an_https_provider_is_reached_over_tls_it_trusts(serve: Serve, tls: Tls) -> None:
    server = await serve(answering_each(lambda: server, answer(b'{"id": "p-2"}')), tls.server)
    url = f"https://{HOST}:{server.port}/push"
    trusting = HttpSender(url=url, token=None, body=push_body, tls=tls.client)
    assert await trusting.send(_message(), CONTENT) == '201 {"id": "p-2"}'
    await trusting.close()

    # The system's certificates do not vouch for a self-signed one: nothing is sent.
    default = HttpSender(url=url, token=None, body=push_body)
    with pytest.raises(TransientFailure, match="CERTIFICATE_VERIFY_FAILED"):
        await default.send(_message(), CONTENT)
    await default.close()
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1:8026/push", (False, "127.0.0.1", 8026, "/push")),
        ("https://sms.example.com", (True, "sms.example.com", 443, "/")),
        (
            "https://sms.example.com./v1/sms?k=%2F#x",
            (True, "sms.example.com", 443, "/v1/sms?k=%2F"),
        ),
        (
            "https://bücher.example/p a?x=ü&y=a+b",
            (True, "xn--bcher-kva.example", 443, "/p%20a?x=%C3%BC&y=a+b"),
        ),
        ("http://[::1]:8443/push", (False, "::1", 8443, "/push")),
    ],
)
def test_a_provider_url_is_posted_to_in_ascii(
    url: str, address: tuple[bool, str, int, str]
) -> None:
    assert provider_address(url) == address


@pytest.mark.parametrize(
    "url",
    [
        "ftp://sms.example.com/send",
        "sms.example.com/send",
        "https://user:pw@sms.example.com/",
        "https://a..b/send",
    ],
)
def test_a_provider_url_that_cannot_be_posted_to_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="provider URL"):
        HttpSender(url=url, token=None, body=push_body)


def test_a_token_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        HttpSender(url="https://sms.example.com/", token="t\r\nX-Evil: 1", body=push_body)
