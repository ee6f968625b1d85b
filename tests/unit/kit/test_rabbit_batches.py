"""How QueueConsumer cuts what arrives into batches (no broker: messages are put in its inbox by
hand)."""

from __future__ import annotations

import asyncio
from typing import Any

from aio_pika.abc import AbstractChannel

from services.kit.rabbit_consumer import Delivery, Inbox, QueueConsumer


class _Consumer(QueueConsumer):
    async def handle(self, batch: list[Delivery], channel: AbstractChannel) -> None:
        raise AssertionError("not used")


def _consumer(batch_size: int, linger: float) -> _Consumer:
    return _Consumer(
        "amqp://unused", "q", name="test", prefetch=10, batch_size=batch_size, linger=linger
    )


async def _batch(consumer: QueueConsumer, inbox: Inbox[Any]) -> list[Any]:
    return list(await consumer._next_batch(inbox))


async def _feed(inbox: Inbox[Any], items: list[int], every: float) -> None:
    for item in items:
        await asyncio.sleep(every)
        inbox.put_nowait(item)


async def test_without_linger_a_batch_is_what_has_arrived() -> None:
    inbox: Inbox[Any] = Inbox()
    inbox.put_nowait(1)
    feeding = asyncio.create_task(_feed(inbox, [2, 3], every=0.02))
    assert await _batch(_consumer(10, linger=0), inbox) == [1]
    await feeding


async def test_linger_gathers_messages_that_trickle_in() -> None:
    inbox: Inbox[Any] = Inbox()
    feeding = asyncio.create_task(_feed(inbox, [1, 2, 3, 4], every=0.01))
    assert await _batch(_consumer(3, linger=5.0), inbox) == [1, 2, 3]
    await feeding
    assert inbox.get_nowait() == 4


async def test_a_full_batch_does_not_wait_for_the_linger() -> None:
    inbox: Inbox[Any] = Inbox()
    for n in range(5):
        inbox.put_nowait(n)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await _batch(_consumer(3, linger=5.0), inbox) == [0, 1, 2]
    assert loop.time() - started < 1.0
    assert len(inbox) == 2


async def test_the_linger_ends_the_batch_and_loses_nothing() -> None:
    inbox: Inbox[Any] = Inbox()
    consumer = _consumer(10, linger=0.2)
    feeding = asyncio.create_task(_feed(inbox, [1, 2], every=0.01))
    first = await _batch(consumer, inbox)
    await feeding
    inbox.put_nowait(3)
    rest = await _batch(consumer, inbox)
    assert first + rest == [1, 2, 3]
    assert first == [1, 2]


async def test_stop_ends_the_linger_with_the_batch_in_hand() -> None:
    inbox: Inbox[Any] = Inbox()
    inbox.put_nowait(1)
    consumer = _consumer(10, linger=30.0)
    asyncio.get_running_loop().call_later(0.05, consumer.stop)
    async with asyncio.timeout(5):
        batch = await _batch(consumer, inbox)
        assert batch == [1]
        assert await _batch(consumer, inbox) == []


async def test_each_arrival_wakes_one_waiting_loop_and_stop_wakes_them_all() -> None:
    inbox: Inbox[Any] = Inbox()
    consumer = _consumer(10, linger=0)
    takers = [asyncio.create_task(_batch(consumer, inbox)) for _ in range(3)]
    async with asyncio.timeout(5):
        for item in (1, 2):
            await asyncio.sleep(0.01)
            inbox.put_nowait(item)
            await asyncio.sleep(0.01)
            assert sorted(x for t in takers if t.done() for x in t.result()) == list(
                range(1, item + 1)
            )
        assert sum(not t.done() for t in takers) == 1, "one loop still waits"
        consumer.stop()
        assert sorted(await asyncio.gather(*takers)) == [[], [1], [2]]
    assert not inbox._waiters, "no waiter is left behind"


async def test_a_wait_that_times_out_leaves_no_waiter_behind() -> None:
    inbox: Inbox[Any] = Inbox()
    consumer = _consumer(10, linger=0.01)
    inbox.put_nowait(1)
    for _ in range(5):
        assert await _batch(consumer, inbox) == [1]
        inbox.put_nowait(1)
    assert not inbox._waiters
    assert len(inbox) == 1
