"""The delivery relay (kit/rabbit_outbox.py) marks exactly what the broker confirmed.

A broker that fails in the middle of a batch leaves the rest pending for the next round, and
the relay reports the failure; nothing unconfirmed is marked, nothing confirmed is republished.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest

from services.kit.rabbit import ConfirmingPublisher
from services.kit.rabbit_outbox import OutgoingMessage, RabbitRelay


class _Connection:
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield


class _Pool:
    @asynccontextmanager
    async def connection(self) -> AsyncIterator[_Connection]:
        yield _Connection()


class _Source:
    def __init__(self, count: int) -> None:
        self.rows = {n: "pending" for n in range(count)}

    async def pending(self, conn: Any, limit: int) -> Sequence[OutgoingMessage]:
        waiting = [n for n, status in self.rows.items() if status == "pending"][:limit]
        return [OutgoingMessage(n, "email.notifications", b"{}", f"m-{n}") for n in waiting]

    async def confirmed(self, conn: Any, keys: Sequence[Any]) -> None:
        for key in keys:
            self.rows[key] = "queued"


class _Broker:
    """Confirms every message but the `fail_at`-th ones (counted from 0), which raise once."""

    def __init__(self, fail_at: set[int]) -> None:
        self.fail_at = fail_at
        self.published: list[str] = []

    def publish(self, exchange: str, routing_key: str, body: bytes, **kwargs: Any) -> None:
        if len(self.published) in self.fail_at:
            self.fail_at.discard(len(self.published))
            raise ConnectionError("broker gone")
        self.published.append(kwargs["message_id"])


def _relay(source: _Source, broker: _Broker, batch_size: int = 10) -> RabbitRelay:
    return RabbitRelay(
        service="tests",
        pool=cast(Any, _Pool()),
        publisher=cast(ConfirmingPublisher, broker),
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


async def test_a_broker_failure_mid_batch_marks_only_what_was_confirmed() -> None:
    source, broker = _Source(5), _Broker({2})
    relay = _relay(source, broker)
    with pytest.raises(ConnectionError):
        await relay.publish_batch()
    assert broker.published == ["m-0", "m-1"]
    assert [source.rows[n] for n in range(5)] == [
        "queued",
        "queued",
        "pending",
        "pending",
        "pending",
    ]
    assert await relay.publish_batch() == 3
    assert broker.published == ["m-0", "m-1", "m-2", "m-3", "m-4"]
    assert set(source.rows.values()) == {"queued"}


async def test_batches_are_bounded() -> None:
    source, broker = _Source(5), _Broker(set())
    relay = _relay(source, broker, batch_size=2)
    assert [await relay.publish_batch() for _ in range(4)] == [2, 2, 1, 0]
