"""LIKE patterns match what the user typed, wildcards included, and nothing more."""

from __future__ import annotations

import pytest

from services.kit.sql import escape_like, like_containing, like_starting_with


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("mug", "mug"),
        ("100%", "100\\%"),
        ("a_b", "a\\_b"),
        ("c:\\temp", "c:\\\\temp"),
        ("\\%_", "\\\\\\%\\_"),
        ("", ""),
    ],
)
def test_wildcards_and_the_escape_character_are_escaped(text: str, escaped: str) -> None:
    assert escape_like(text) == escaped


def test_patterns_for_containing_and_starting_with() -> None:
    assert like_containing("50%_off") == "%50\\%\\_off%"
    assert like_starting_with("0b6f_") == "0b6f\\_%"
