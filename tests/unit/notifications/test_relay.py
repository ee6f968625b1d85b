"""The delivery relay (kit/rabbit_outbox.py) marks exactly what the broker confirmed.

A broker that refuses some messages of a batch leaves those pending for the next round, and
the relay reports the failure; nothing unconfirmed is marked, nothing confirmed is republished.
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

    async def pending(self, conn: Any, limit: int) -> Sequence[OutgoingMessage]:
        waiting = [n for n, status in self.rows.items() if status == "pending"][:limit]
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


async def test_a_batch_is_published_in_order_and_marked() -> None:
    source, broker = _Source(3), _Broker(set())
    assert await _relay(source, broker).publish_batch() == 3
    assert broker.published == ["m-0", "m-1", "m-2"]
    assert set(source.rows.values()) == {"queued"}
    assert await _relay(source, broker).publish_batch() == 0


async def test_a_refused_message_mid_batch_stays_pending_and_the_rest_is_marked() -> None:
    source, broker = _Source(5), _Broker({2})
    relay = _relay(source, broker)
    with pytest.raises(Unconfirmed):
        await relay.publish_batch()
    assert broker.published == ["m-0", "m-1", "m-3", "m-4"]
    assert [source.rows[n] for n in range(5)] == [
        "queued",
        "queued",
        "pending",
        "queued",
        "queued",
    ]
    assert await relay.publish_batch() == 1
    assert broker.published == ["m-0", "m-1", "m-3", "m-4", "m-2"]
    assert set(source.rows.values()) == {"queued"}


async def test_batches_are_bounded() -> None:
    source, broker = _Source(5), _Broker(set())
    relay = _relay(source, broker, batch_size=2)
    assert [await relay.publish_batch() for _ in range(4)] == [2, 2, 1, 0]
