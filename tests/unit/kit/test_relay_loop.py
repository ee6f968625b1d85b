"""The relay loop: a NOTIFY during a batch is not lost, and a relay ends when its task is
cancelled, whenever the cancel lands.

Python 3.11's `asyncio.wait_for` drops a cancellation that arrives just after the awaited event
fired (CPython issue 86296), so an idle relay woken by a NOTIFY and cancelled in the same few
loop turns kept relaying. The cancel here lands 0 to 3 loop turns after a wake-up.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.kit.outbox import OutboxRelay


class _IdleRelay(OutboxRelay):
    """A relay with nothing to publish and no database to listen on."""

    def __init__(self) -> None:
        super().__init__(pool=Any, producer=Any, conninfo="", schema="test", poll_interval=5.0)  # type: ignore[arg-type]
        self.batches = 0
        self.notified_during: set[int] = set()
        self.second_batch = asyncio.Event()

    async def publish_batch(self) -> int:
        self.batches += 1
        if self.batches == 2:
            self.second_batch.set()
        if self.batches in self.notified_during:
            await asyncio.sleep(0)
            self.wake()  # a transaction committed rows while this batch was being published
            return 1
        return 0

    async def _listen(self) -> None:
        await asyncio.Event().wait()


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
async def test_a_relay_cancelled_right_after_a_wake_up_ends(turns: int) -> None:
    relay = _IdleRelay()
    task = asyncio.create_task(relay.run())
    for _ in range(5):
        await asyncio.sleep(0)  # its first (empty) batch, then idle in its wait for a wake-up
    assert relay.batches == 1
    relay.wake()
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    # asyncio.wait does not cancel what it waits for, so a lost cancel shows as a running task.
    done, _ = await asyncio.wait({task}, timeout=2)
    if not done:
        relay.stop()
        await asyncio.wait({task}, timeout=2)
    assert done, f"the relay kept running after a cancel {turns} loop turns after a wake-up"
    assert task.cancelled()


async def test_a_notify_during_a_batch_starts_the_next_batch_at_once() -> None:
    relay = _IdleRelay()  # polls every 5 s
    relay.notified_during = {1}
    task = asyncio.create_task(relay.run())
    try:
        async with asyncio.timeout(1):
            await relay.second_batch.wait()
    finally:
        relay.stop()
        await task
    assert relay.batches == 2, "the second batch ran for the rows the NOTIFY announced"
