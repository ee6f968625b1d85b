"""Opaque keyset cursors: the sort key of a page's last row, as a client passes it back.

A cursor is the row's key values as a JSON array in unpadded URL-safe base64, so it survives a
query string unescaped and tells the client nothing it should rely on. Each service decides
what its key is (`encode_cursor(name, product_id)`, `encode_cursor(created_at, order_id)`)
and parses it back with `decode_cursor(cursor, parse)`; anything that does not decode and
parse is a `MalformedCursor`, which the service answers with its own 4xx.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TypeVar

import orjson

CursorValue = str | int | float | bool | None
T = TypeVar("T")


class MalformedCursor(ValueError):
    """The cursor is not one a service returned (or was altered on the way back)."""


def encode_cursor(*values: CursorValue) -> str:
    """The cursor holding `values` (the sort key of the page's last row)."""
    return base64.urlsafe_b64encode(orjson.dumps(values)).rstrip(b"=").decode()


def decode_cursor(cursor: str, parse: Callable[..., T]) -> T:
    """`parse(*values)` of the values `cursor` holds.

    `parse` turns the JSON values back into the key's types; a `ValueError` or `TypeError` it
    raises (a wrong count of values, a value of the wrong type) marks the cursor malformed too.
    """
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list):
            raise MalformedCursor("a cursor holds a list of values")
        return parse(*values)
    except (ValueError, TypeError) as exc:  # binascii.Error and JSONDecodeError included
        raise MalformedCursor(f"not a cursor: {cursor!r}") from exc
