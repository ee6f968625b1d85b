"""The publish frames written in one pass (services/kit/amqp_frames.py) are the bytes pamqp
marshals for the same message, as aio-pika publishes it."""

from __future__ import annotations

from typing import Any

import pytest
from pamqp import commands, frame, header
from pamqp.body import ContentBody

from services.kit.amqp_frames import publish_frames


def _pamqp(
    *,
    channel: int,
    routing_key: str,
    body: bytes,
    content_type: str,
    headers: dict[str, str | int],
    message_id: str,
    app_id: str,
    max_body: int,
) -> bytes:
    table: dict[str, Any] = dict(headers)
    properties = commands.Basic.Properties(
        content_type=content_type,
        headers=table,
        delivery_mode=2,
        message_id=message_id,
        app_id=app_id,
    )
    frames: list[frame.FrameTypes] = [
        commands.Basic.Publish(exchange="", routing_key=routing_key, mandatory=True),
        header.ContentHeader(body_size=len(body), properties=properties),
    ]
    frames += [ContentBody(body[i : i + max_body]) for i in range(0, len(body), max_body)]
    return b"".join(frame.marshal(f, channel) for f in frames)


MESSAGES = {
    "a delivery": {
        "routing_key": "notifications.push",
        "body": b'{"deliveryId":"6f1c","attempt":1}',
        "headers": {
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "attempt": 1,
        },
    },
    "no headers": {"routing_key": "q", "body": b"{}", "headers": {}},
    "every integer size and booleans": {
        "routing_key": "q",
        "body": b"x",
        "headers": {
            "a": -128,
            "b": 300,
            "c": 40_000,
            "d": -70_000,
            "e": 3_000_000_000,
            "f": 2**40,
            "g": True,
            "h": False,
        },
    },
    "non-ASCII": {"routing_key": "café", "body": "né".encode(), "headers": {"clé": "été"}},
    "an empty body": {"routing_key": "q", "body": b"", "headers": {"k": "v"}},
    "a body over one frame": {"routing_key": "q", "body": bytes(range(256)) * 40, "headers": {}},
}


@pytest.mark.parametrize("case", MESSAGES)
def test_the_frames_are_pamqps(case: str) -> None:
    message = MESSAGES[case]
    fields = {
        "channel": 3,
        "routing_key": message["routing_key"],
        "body": message["body"],
        "content_type": "application/json",
        "headers": message["headers"],
        "message_id": "6f1c2a9e-0000-4000-8000-000000000001",
        "app_id": "notifications",
        "max_body": 4096 - 8,
    }

    assert publish_frames(**fields) == _pamqp(**fields)  # type: ignore[arg-type]


def test_a_routing_key_over_a_short_string_is_refused() -> None:
    with pytest.raises(ValueError, match="255 bytes"):
        publish_frames(
            channel=1,
            routing_key="q" * 256,
            body=b"",
            content_type="application/json",
            headers={},
            message_id="m",
            app_id="a",
            max_body=100,
        )


def test_a_header_of_another_type_is_refused() -> None:
    with pytest.raises(TypeError, match="string or an integer"):
        publish_frames(
            channel=1,
            routing_key="q",
            body=b"",
            content_type="application/json",
            headers={"k": 1.5},  # type: ignore[dict-item]
            message_id="m",
            app_id="a",
            max_body=100,
        )


def test_without_a_frame_size_the_body_is_one_frame() -> None:
    body = b"x" * 10_000
    frames = publish_frames(
        channel=1,
        routing_key="q",
        body=body,
        content_type="application/json",
        headers={},
        message_id="m",
        app_id="a",
        max_body=-8,  # aiormq's size for a connection whose frame size is 0 (no limit)
    )

    assert frames.endswith(b"\x03\x00\x01" + len(body).to_bytes(4, "big") + body + b"\xce")
