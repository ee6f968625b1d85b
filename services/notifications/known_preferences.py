"""The users' preferences as this process last read or saved them, for notifying without a read.

An entry is a guess, never trusted on its own: the statement that records a notification checks
that the stored preferences are still the ones saved at the entry's time (repository.py
`record_notifications`), and a guess that is out of date (the user saved new preferences through
another replica) is dropped and read again. So the cache can only save reads, never send with
preferences the user replaced.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from services.notifications.domain import Preferences


@dataclass(frozen=True, slots=True)
class KnownPreferences:
    preferences: Preferences
    saved_at: datetime | None
    """When the user saved them (the stored row's `updated_at`); None: never (the defaults)."""


class PreferencesCache:
    """At most `size` users' preferences; the one used longest ago goes first. Size 0 keeps
    nothing (every event reads its user's preferences)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._known: OrderedDict[str, KnownPreferences] = OrderedDict()

    def get(self, user_id: str) -> KnownPreferences | None:
        known = self._known.get(user_id)
        if known is not None:
            self._known.move_to_end(user_id)
        return known

    def put(self, user_id: str, known: KnownPreferences) -> None:
        if self.size <= 0:
            return
        self._known[user_id] = known
        self._known.move_to_end(user_id)
        while len(self._known) > self.size:
            self._known.popitem(last=False)

    def drop(self, user_id: str) -> None:
        self._known.pop(user_id, None)

    def __len__(self) -> int:
        return len(self._known)
