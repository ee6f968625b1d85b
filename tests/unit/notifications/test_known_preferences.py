"""The preferences cache keeps the users used last, and nothing when its size is 0."""

from __future__ import annotations

from datetime import UTC, datetime

from services.notifications.domain import Preferences
from services.notifications.known_preferences import KnownPreferences, PreferencesCache


def known(email: str) -> KnownPreferences:
    return KnownPreferences(Preferences(email=email), datetime(2026, 1, 1, tzinfo=UTC))


def test_the_user_used_longest_ago_goes_first() -> None:
    cache = PreferencesCache(2)
    cache.put("ada", known("ada@example.org"))
    cache.put("bob", known("bob@example.org"))
    assert cache.get("ada") == known("ada@example.org")  # ada is now the newest used
    cache.put("eve", known("eve@example.org"))
    assert cache.get("bob") is None
    assert cache.get("ada") == known("ada@example.org")
    assert cache.get("eve") == known("eve@example.org")
    assert len(cache) == 2


def test_a_put_replaces_and_a_drop_forgets() -> None:
    cache = PreferencesCache(10)
    cache.put("ada", known("ada@example.org"))
    cache.put("ada", known("grace@example.org"))
    assert cache.get("ada") == known("grace@example.org")
    cache.drop("ada")
    cache.drop("nobody")
    assert cache.get("ada") is None
    assert len(cache) == 0


def test_size_zero_keeps_nothing() -> None:
    cache = PreferencesCache(0)
    cache.put("ada", known("ada@example.org"))
    assert cache.get("ada") is None
    assert len(cache) == 0
