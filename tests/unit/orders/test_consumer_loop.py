"""The consumer loop replaces a consumer that fails and ends when asked to stop."""

from __future__ import annotations

import asyncio

from services.orders.main import ConsumerLoop


class FakeConsumer:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.stopped = asyncio.Event()

    def stop(self) -> None:
        self.stopped.set()

    async def run(self) -> None:
        if self.fail:
            raise RuntimeError("commit refused: rebalance in progress")
        await self.stopped.wait()


async def test_a_failed_consumer_is_replaced_until_stopped() -> None:
    made: list[FakeConsumer] = []
    third = asyncio.Event()

    def make() -> FakeConsumer:
        made.append(FakeConsumer(fail=len(made) < 2))
        if len(made) == 3:
            third.set()
        return made[-1]

    loop = ConsumerLoop(make, restart_delay=0.01)
    task = asyncio.create_task(loop.run())
    await asyncio.wait_for(third.wait(), 2)
    loop.stop()
    await asyncio.wait_for(task, 2)
    assert len(made) == 3
    assert made[-1].stopped.is_set()


async def test_stopping_before_the_start_runs_nothing() -> None:
    made: list[FakeConsumer] = []

    def make() -> FakeConsumer:
        made.append(FakeConsumer(fail=False))
        return made[-1]

    loop = ConsumerLoop(make)
    loop.stop()
    await asyncio.wait_for(loop.run(), 1)
    assert made == []
