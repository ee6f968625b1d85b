"""Opaque keyset cursors: the sort key of a page's last row, as a client passes it back.

A cursor is the row's key values as a JSON array in unpadded URL-safe base64, so it survives a
query string unescaped and tells the client nothing it should rely on. Each service decides
what its key is (`encode_cursor(name, product_id)`, `encode_cursor(created_at, order_id)`)
and parses it back with `decode_cursor(cursor, parse)`; anything that does not decode and
parse is a `MalformedCursor`, which the service answers with its own 4xx. So is a cursor whose
text values hold a control character or a lone surrogate (a forged one), which PostgreSQL
could not take as a parameter.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TypeVar

import orjson

from services.kit.models import refuse_controls

CursorValue = str | int | float | bool | None
T = TypeVar("T")


class MalformedCursor(ValueError):
    """The cursor is not one a service returned (or was altered on the way back)."""


def encode_cursor(*values: CursorValue) -> str:
    """The cursor holding `values` (the sort key of the page's last row)."""
    return base64.urlsafe_b64encode(orjson.dumps(values)).rstrip(b"=").decode()


def decode_cursor(cursor: str, parse: Callable[..., T]) -> T:
    """`parse(*values)` of the values `cursor` holds.

    `parse` turns the JSON values back into the key's types; a `ValueError`, `TypeError` or
    `AttributeError` it raises (a wrong count of values, a value of the wrong type: `uuid.UUID`
    given a number fails with AttributeError) marks the cursor malformed too.
    """
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list):
            raise MalformedCursor("a cursor holds a list of values")
        for value in values:
            if isinstance(value, str):
                refuse_controls(value)
        return parse(*values)
    # binascii.Error and JSONDecodeError are ValueErrors
    except (ValueError, TypeError, AttributeError) as exc:
        raise MalformedCursor(f"not a cursor: {cursor!r}") from exc
