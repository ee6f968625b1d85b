"""Keyset cursors: opaque, URL-safe, and refused as one error type when they are not ours."""

from __future__ import annotations

import base64
import uuid

import pytest

from services.kit.pagination import MalformedCursor, decode_cursor, encode_cursor


def _pair(name: str, product_id: str) -> tuple[str, uuid.UUID]:
    return name, uuid.UUID(product_id)


def test_a_cursor_round_trips_through_its_parser() -> None:
    product_id = uuid.uuid4()
    cursor = encode_cursor("Mug, blue & white/½", str(product_id))
    assert decode_cursor(cursor, _pair) == ("Mug, blue & white/½", product_id)


def test_a_cursor_is_unpadded_url_safe_base64_of_a_json_array() -> None:
    cursor = encode_cursor("??>", 7, None, True)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    padded = cursor + "=" * (-len(cursor) % 4)
    assert base64.urlsafe_b64decode(padded) == b'["??>",7,null,true]'
    assert decode_cursor(cursor, lambda *values: values) == ("??>", 7, None, True)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "not base64 at all!",
        base64.urlsafe_b64encode(b"{").decode(),  # not JSON
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),  # not a list
        base64.urlsafe_b64encode(b'"Mug"').decode(),  # a string is no list either
        encode_cursor("Mug"),  # too few values
        encode_cursor("Mug", str(uuid.uuid4()), 3),  # too many
        encode_cursor("Mug", "not-a-uuid"),  # the parser refuses a value
    ],
)
def test_anything_else_is_a_malformed_cursor(cursor: str) -> None:
    with pytest.raises(MalformedCursor):
        decode_cursor(cursor, _pair)


def test_a_malformed_cursor_is_a_value_error() -> None:
    assert issubclass(MalformedCursor, ValueError)
