"""What the kit's outbox tests put in an outbox: events, and a fresh topic holding some."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.kit.db import Pool
from services.kit.kafka import ensure_topics
from services.kit.order_events import ReservationExpired
from services.kit.outbox import add_to_outbox, event


def expired(order_id: str) -> Any:
    """An event about `order_id` (any type does; this one is small)."""
    data = ReservationExpired(
        order_id=order_id, user_id="u", version=1, expired_at=datetime.now(UTC)
    )
    return event("/test", "inventory.reservation-expired", order_id, data)


async def outbox_topic(pool: Pool, broker: str, prefix: str, *order_ids: str) -> str:
    """A new one-partition topic, with one event per order id for it in the outbox (committed
    together)."""
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    ensure_topics(broker, [topic], partitions=1)
    async with pool.connection() as conn, conn.transaction():
        for order_id in order_ids:
            await add_to_outbox(conn, topic, expired(order_id))
    return topic
