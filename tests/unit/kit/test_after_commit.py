"""After-commit effects run in order, off the caller's path, bounded, and counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.kit.after_commit import AfterCommit, Batched, Coalesced, Effect
from services.kit.metrics import AFTER_COMMIT_EFFECTS


def count(service: str, outcome: str) -> float:
    value: float = AFTER_COMMIT_EFFECTS.labels(service, outcome)._value.get()
    return value


@asynccontextmanager
async def running(runner: AfterCommit) -> AsyncIterator[None]:
    """The runner's job started for the block, stopped (its queue finished) after it."""
    job = runner.job()
    task = asyncio.create_task(job.run())
    try:
        yield
    finally:
        job.stop()
        await task


@asynccontextmanager
async def held(runner: AfterCommit) -> AsyncIterator[asyncio.Event]:
    """The runner's job started and held on a first effect until the yielded gate is set."""
    gate, started = asyncio.Event(), asyncio.Event()

    async def blocker() -> None:
        started.set()
        await gate.wait()

    async with running(runner):
        runner.submit([blocker])
        await started.wait()
        try:
            yield gate
        finally:
            gate.set()


async def test_effects_run_in_submission_order_without_holding_up_the_submitter() -> None:
    runner = AfterCommit("unit-order")
    done: list[int] = []
    gate = asyncio.Event()

    def effect(n: int) -> Effect:
        async def run() -> None:
            await gate.wait()
            done.append(n)

        return run

    async with running(runner):
        runner.submit([effect(1), effect(2)])  # returns at once, although they are blocked
        runner.submit([effect(3)])
        assert done == []
        gate.set()
        async with asyncio.timeout(2):
            await runner.drained()
    assert done == [1, 2, 3]


async def test_a_slow_or_failing_effect_is_counted_and_the_next_still_runs() -> None:
    runner = AfterCommit("unit-failures", timeout=0.05)
    ran: list[str] = []

    async def hangs() -> None:
        await asyncio.Event().wait()

    async def fails() -> None:
        raise ConnectionError("redis is down")

    async def works() -> None:
        ran.append("works")

    before = {o: count("unit-failures", o) for o in ("done", "failed", "timed_out")}
    async with running(runner):
        runner.submit([hangs, fails, works])
        async with asyncio.timeout(2):
            await runner.drained()
    assert ran == ["works"]
    assert count("unit-failures", "timed_out") == before["timed_out"] + 1
    assert count("unit-failures", "failed") == before["failed"] + 1
    assert count("unit-failures", "done") == before["done"] + 1


async def test_a_full_queue_drops_and_counts_instead_of_waiting() -> None:
    runner = AfterCommit("unit-full", capacity=2)
    ran: list[int] = []

    def effect(n: int) -> Effect:
        async def run() -> None:
            ran.append(n)

        return run

    before = count("unit-full", "dropped")
    runner.submit([effect(n) for n in range(5)])  # no runner yet: nothing drains the queue
    assert runner.pending == 2
    assert count("unit-full", "dropped") == before + 3
    async with running(runner), asyncio.timeout(2):
        await runner.drained()
    assert ran == [0, 1]


async def test_stop_finishes_what_is_queued() -> None:
    runner = AfterCommit("unit-stop")
    ran: list[int] = []

    async def effect() -> None:
        await asyncio.sleep(0.01)
        ran.append(1)

    job = runner.job()
    task = asyncio.create_task(job.run())
    runner.submit([effect, effect, effect])
    job.stop()
    async with asyncio.timeout(2):
        await task
    assert ran == [1, 1, 1]


async def test_a_coalesced_effect_is_queued_once_while_one_waits_and_again_once_it_runs() -> None:
    runner = AfterCommit("unit-coalesced")
    ran: list[str] = []

    async def invalidate() -> None:
        ran.append("invalidate")
        if len(ran) == 1:
            # A change committed while this one runs must still be followed by one.
            runner.submit([Coalesced("cache", invalidate)])

    async def push() -> None:
        ran.append("push")

    before = count("unit-coalesced", "coalesced")
    async with held(runner) as gate:
        runner.submit([Coalesced("cache", invalidate), push])
        runner.submit([Coalesced("cache", invalidate), Coalesced("other", push)])
        runner.submit([Coalesced("cache", invalidate)])
        assert runner.pending == 3
        gate.set()
        async with asyncio.timeout(2):
            await runner.drained()
    assert ran == ["invalidate", "push", "push", "invalidate"]
    assert count("unit-coalesced", "coalesced") == before + 2


async def test_batched_effects_queued_together_run_as_one_call_in_their_order() -> None:
    runner = AfterCommit("unit-batched")
    ran: list[object] = []

    async def pushes(items: list[object]) -> None:
        ran.append(list(items))

    async def reads(items: list[object]) -> None:
        ran.append(("reads", list(items)))

    async def metric() -> None:
        ran.append("metric")

    before = count("unit-batched", "done")
    async with held(runner) as gate:
        runner.submit([Batched(pushes, "a1"), metric, Batched(reads, "r1")])
        runner.submit([Batched(pushes, "b1"), metric, Batched(pushes, "a2")])
        gate.set()
        async with asyncio.timeout(2):
            await runner.drained()
        runner.submit([Batched(pushes, "c1")])  # queued alone: a batch of one
        async with asyncio.timeout(2):
            await runner.drained()

    assert ran == [["a1", "b1", "a2"], "metric", ("reads", ["r1"]), "metric", ["c1"]]
    assert count("unit-batched", "done") == before + 1 + 7
