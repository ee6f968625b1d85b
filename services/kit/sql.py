"""Helpers for the plain SQL the repositories write."""

from __future__ import annotations


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
