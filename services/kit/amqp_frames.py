"""The AMQP 0-9-1 frames of one persistent message published to the default exchange, in one pass.

pamqp, under aio-pika, builds a `Basic.Publish`, a `ContentHeader` with its `Basic.Properties`
and a body frame as objects, then marshals each field through a lookup of its type: a tenth of
the notifications service's CPU went there and into aio-pika's message objects, for messages
whose shape never changes (kit/rabbit.py publishes only these). Here the same bytes are written
directly: the method frame (mandatory, not immediate), the content header with the properties
the platform sets (content type, headers, delivery mode 2, message id, app id) and the body,
split at the connection's frame size. Header values are strings, booleans or integers, encoded
as pamqp encodes them (integers in the smallest type that holds them) and in its order (sorted
by name); tests/unit/kit/test_amqp_frames.py holds the bytes to pamqp's.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from pamqp.encode import table_integer

FRAME_END = b"\xce"
_METHOD = struct.Struct(">BHI")
_BASIC_PUBLISH = struct.pack(">HHH", 60, 40, 0)  # class, method, reserved ticket
_HEADER = struct.Struct(">HHQH")  # class, weight, body size, property flags
_LONG = struct.Struct(">I")
_MANDATORY = b"\x01"
PERSISTENT = b"\x02"
# content type, headers, delivery mode, message id, app id (bits 15, 13, 12, 7 and 3)
_FLAGS = 1 << 15 | 1 << 13 | 1 << 12 | 1 << 7 | 1 << 3


def publish_frames(
    *,
    channel: int,
    routing_key: str,
    body: bytes,
    content_type: str,
    headers: Mapping[str, str | int],
    message_id: str,
    app_id: str,
    max_body: int,
) -> bytes:
    """The frames that publish `body` to the default exchange on `channel`, mandatory and
    persistent; body frames carry at most `max_body` bytes (the frame size less 8; the whole
    body in one frame when the connection set no frame size, `max_body` <= 0)."""
    method = _BASIC_PUBLISH + b"\x00" + _short(routing_key) + _MANDATORY
    properties = (
        _short(content_type) + _table(headers) + PERSISTENT + _short(message_id) + _short(app_id)
    )
    header = _HEADER.pack(60, 0, len(body), _FLAGS) + properties
    parts = [
        _METHOD.pack(1, channel, len(method)),
        method,
        FRAME_END,
        _METHOD.pack(2, channel, len(header)),
        header,
        FRAME_END,
    ]
    step = max_body if max_body > 0 else max(len(body), 1)  # 0: no frame size limit
    for start in range(0, len(body), step):
        chunk = body[start : start + step]
        parts += (_METHOD.pack(3, channel, len(chunk)), chunk, FRAME_END)
    return b"".join(parts)


def _short(value: str) -> bytes:
    encoded = value.encode()
    if len(encoded) > 255:
        raise ValueError(f"longer than a short string's 255 bytes: {value[:40]!r}...")
    return bytes((len(encoded),)) + encoded


def _table(values: Mapping[str, str | int]) -> bytes:
    parts = []
    for key, value in sorted(values.items()):
        parts.append(_short(key))
        if isinstance(value, str):
            encoded = value.encode()
            parts += (b"S", _LONG.pack(len(encoded)), encoded)
        elif isinstance(value, bool):
            parts.append(b"t\x01" if value else b"t\x00")
        elif isinstance(value, int):
            parts.append(table_integer(value))
        else:
            raise TypeError(f"a header value must be a string or an integer, not {value!r}")
    content = b"".join(parts)
    return _LONG.pack(len(content)) + content
