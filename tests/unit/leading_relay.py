"""A delivery relay for unit tests: it leads without a database, and what it reads and marks
comes from the test's own `OutboxSource`."""

from __future__ import annotations

from typing import cast

from services.kit.db import DictConnection
from services.kit.rabbit_outbox import RabbitRelay


class LeadingRabbitRelay(RabbitRelay):
    async def leading_session(self) -> DictConnection | None:
        # The sources of these tests never use the session they are handed.
        return cast("DictConnection", object())
