"""Helpers for the plain SQL the repositories write."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson


def escape_like(text: str) -> str:
    """`text` with LIKE's wildcards escaped, so it matches only itself (PostgreSQL's default
    escape character, the backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like_containing(text: str) -> str:
    """A LIKE pattern matching any string that contains `text`."""
    return f"%{escape_like(text)}%"


def like_starting_with(text: str) -> str:
    """A LIKE pattern matching any string that starts with `text`."""
    return f"{escape_like(text)}%"


def json_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    """`rows` as one JSON array: the parameter of a `json_to_recordset(%s::json)` (or jsonb)
    that hands a statement many rows at once. UUIDs, datetimes and enums go as their text,
    decimals as strings (numeric keeps every digit)."""
    return orjson.dumps(rows, default=str).decode()
