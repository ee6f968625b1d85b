"""The producer's delivery reports reach the event loop together (services/kit/kafka.py): one
wake-up for the reports that arrive before the loop runs, each future settled by its own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from services.kit.kafka import EventProducer


@pytest.fixture
def producer() -> Iterator[EventProducer]:
    made = EventProducer("127.0.0.1:9", "reports-test", service="test")  # never reached
    yield made
    made.close(timeout=0.1)


def _from_thread(*calls: tuple[asyncio.Future[None], KafkaError | None], to: EventProducer) -> None:
    """Deliver reports as the poll thread does, all before the loop runs again."""

    def deliver() -> None:
        for future, err in calls:
            to._delivered(future, err, None)  # type: ignore[arg-type]

    thread = threading.Thread(target=deliver)
    thread.start()
    thread.join()


async def test_reports_from_one_poll_wake_the_loop_once(producer: EventProducer) -> None:
    loop = asyncio.get_running_loop()
    wakes = 0
    settle = producer._settle

    def counted(*args: Any) -> None:
        nonlocal wakes
        wakes += 1
        settle(*args)

    producer._settle = counted  # type: ignore[method-assign,assignment]
    futures = [loop.create_future() for _ in range(5)]

    _from_thread(*((future, None) for future in futures), to=producer)
    await asyncio.gather(*futures)

    assert wakes == 1
    assert all(future.result() is None for future in futures)


async def test_a_failed_report_fails_only_its_future(producer: EventProducer) -> None:
    loop = asyncio.get_running_loop()
    ok, failed = loop.create_future(), loop.create_future()

    _from_thread((ok, None), (failed, KafkaError(KafkaError._MSG_TIMED_OUT)), to=producer)
    results = await asyncio.gather(ok, failed, return_exceptions=True)

    assert results[0] is None
    assert isinstance(results[1], KafkaException)
    assert results[1].args[0].code() == KafkaError._MSG_TIMED_OUT


async def test_reports_after_a_wake_get_a_wake_of_their_own(producer: EventProducer) -> None:
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()

    _from_thread((first, None), to=producer)
    await first
    _from_thread((second, None), to=producer)

    async with asyncio.timeout(5):
        assert await second is None


def _settles_on_another_loop(producer: EventProducer) -> None:
    """A report for a loop that runs is settled within 5 s."""

    async def elsewhere() -> None:
        future = asyncio.get_running_loop().create_future()
        _from_thread((future, None), to=producer)
        async with asyncio.timeout(5):
            await future

    asyncio.run(elsewhere())


def test_a_report_for_a_closed_loop_is_dropped_and_another_loops_still_wake(
    producer: EventProducer,
) -> None:
    gone = asyncio.new_event_loop()
    orphan = gone.create_future()
    gone.close()

    _from_thread((orphan, None), to=producer)

    _settles_on_another_loop(producer)
    assert gone not in producer._reports, "the closed loop's reports are not kept"


def test_a_loop_that_never_ran_its_wake_up_does_not_hold_up_another_loops_reports(
    producer: EventProducer,
) -> None:
    stopped = asyncio.new_event_loop()
    waiting = stopped.create_future()
    _from_thread((waiting, None), to=producer)  # its wake-up is queued on a loop that never runs
    stopped.close()

    _settles_on_another_loop(producer)
