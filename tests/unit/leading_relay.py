"""A delivery relay for unit tests: it leads without a database, and what it reads and marks
comes from the test's own `OutboxSource`."""

from __future__ import annotations

from typing import cast

from services.kit.db import DictConnection
from services.kit.rabbit_outbox import RabbitRelay


class _Session:
    closed = False


class LeadingRabbitRelay(RabbitRelay):
    # The sources of these tests never use the session they are handed; it stays the same
    # one, as a leader's does, so each round marks what the last one published.
    _fake_session = cast("DictConnection", _Session())

    async def leading_session(self) -> DictConnection | None:
        return self._fake_session
