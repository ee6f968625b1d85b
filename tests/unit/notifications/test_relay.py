"""The delivery relay (kit/rabbit_outbox.py) marks exactly what the broker confirmed.

The next round marks what a round published, or the relay's close when it stops. A broker that
refuses some messages of a batch leaves those pending for the next round, and the relay reports
the failure; nothing unconfirmed is marked, nothing confirmed is republished.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pytest

from services.kit.rabbit import Outgoing, Publisher, Unconfirmed
from services.kit.rabbit_outbox import OutgoingMessage, RabbitRelay
from tests.unit.leading_relay import LeadingRabbitRelay


class _Source:
    def __init__(self, count: int) -> None:
        self.rows = {n: "pending" for n in range(count)}

    async def pending(
        self, conn: Any, limit: int, confirmed: Sequence[Any]
    ) -> Sequence[OutgoingMessage]:
        await self.confirmed(conn, confirmed)
        waiting = [
            n for n, status in self.rows.items() if status == "pending" and n not in confirmed
        ][:limit]
        return [
            OutgoingMessage(n, Outgoing("email.notifications", b"{}", f"m-{n}")) for n in waiting
        ]

    async def confirmed(self, conn: Any, keys: Sequence[Any]) -> None:
        for key in keys:
            self.rows[key] = "queued"


class _Broker:
    """Confirms every message but the `fail_at`-th ones (counted from 0 over all publishes),
    which it refuses once."""

    def __init__(self, fail_at: set[int]) -> None:
        self.fail_at = fail_at
        self.seen = 0
        self.published: list[str] = []

    async def publish(self, messages: Sequence[Outgoing]) -> list[BaseException | None]:
        results: list[BaseException | None] = []
        for message in messages:
            if self.seen in self.fail_at:
                results.append(Unconfirmed("nack"))
            else:
                self.published.append(message.message_id)
                results.append(None)
            self.seen += 1
        return results


def _relay(source: _Source, broker: _Broker, batch_size: int = 10) -> RabbitRelay:
    return LeadingRabbitRelay(
        service="tests",
        publisher=cast(Publisher, broker),
        source=source,
        conninfo="",
        schema="tests",
        channel="deliveries",
        batch_size=batch_size,
    )


async def test_a_batch_is_published_in_order_and_marked_by_the_next_round() -> None:
    source, broker = _Source(3), _Broker(set())
    relay = _relay(source, broker)
    assert await relay.publish_batch() == 3
    assert broker.published == ["m-0", "m-1", "m-2"]
    assert set(source.rows.values()) == {"pending"}, "marked by the next round"
    assert await relay.publish_batch() == 0
    assert set(source.rows.values()) == {"queued"}
    assert broker.published == ["m-0", "m-1", "m-2"], "nothing published twice"


async def test_a_stopping_relay_marks_its_last_round() -> None:
    source, broker = _Source(2), _Broker(set())
    relay = _relay(source, broker)
    assert await relay.publish_batch() == 2
    await relay.close()
    assert set(source.rows.values()) == {"queued"}


async def test_a_refused_message_mid_batch_stays_pending_and_the_rest_is_marked() -> None:
    source, broker = _Source(5), _Broker({2})
    relay = _relay(source, broker)
    with pytest.raises(Unconfirmed):
        await relay.publish_batch()
    assert broker.published == ["m-0", "m-1", "m-3", "m-4"]
    assert await relay.publish_batch() == 1
    assert [source.rows[n] for n in range(5)] == [
        "queued",
        "queued",
        "pending",
        "queued",
        "queued",
    ]
    assert broker.published == ["m-0", "m-1", "m-3", "m-4", "m-2"]
    assert await relay.publish_batch() == 0
    assert set(source.rows.values()) == {"queued"}


async def test_batches_are_bounded() -> None:
    source, broker = _Source(5), _Broker(set())
    relay = _relay(source, broker, batch_size=2)
    assert [await relay.publish_batch() for _ in range(4)] == [2, 2, 1, 0]
    assert broker.published == ["m-0", "m-1", "m-2", "m-3", "m-4"]
