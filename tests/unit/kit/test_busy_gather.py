"""A consumer under load waits a little for more events before it applies a batch; a quiet one
does not (kit/gather.py `BusyGather`, kit/kafka.py `BatchConsumer._fetch`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from services.kit.gather import BUSY_FROM_RATE, BusyGather
from services.kit.kafka import BatchConsumer
from tests.support import Clock


def _fetching(gather: BusyGather, clock: Clock, rate: float, seconds: float) -> None:
    """Fetches of one event each, `rate` a second for `seconds`."""
    for _ in range(int(rate * seconds)):
        clock.now += 1 / rate
        gather.took(1)


def test_a_quiet_consumer_does_not_wait() -> None:
    clock = Clock()
    gather = BusyGather(5, clock=clock)
    assert gather.wait_seconds() == 0.0
    _fetching(gather, clock, rate=20, seconds=5)
    assert gather.per_second() == pytest.approx(20, rel=0.1)
    assert gather.wait_seconds() == 0.0


def test_a_busy_consumer_waits_and_stops_waiting_once_the_load_is_gone() -> None:
    clock = Clock()
    gather = BusyGather(5, clock=clock)
    _fetching(gather, clock, rate=300, seconds=3)
    assert gather.per_second() == pytest.approx(300, rel=0.1)
    assert gather.wait_seconds() == 0.005

    clock.now += 3.0  # nothing taken for three horizons
    assert gather.per_second() < BUSY_FROM_RATE
    assert gather.wait_seconds() == 0.0


def test_a_batch_counts_every_event_it_brought() -> None:
    clock = Clock()
    gather = BusyGather(5, clock=clock)
    for _ in range(30):  # 10 fetches a second, 20 events each
        clock.now += 0.1
        gather.took(20)
    assert gather.per_second() == pytest.approx(200, rel=0.1)
    assert gather.wait_seconds() == 0.005


def test_without_a_wait_a_consumer_never_waits() -> None:
    clock = Clock()
    gather = BusyGather(0, clock=clock)
    _fetching(gather, clock, rate=1000, seconds=2)
    assert gather.wait_seconds() == 0.0


@pytest.mark.parametrize(("wait_ms", "from_rate", "horizon"), [(-1, 50, 1), (5, -1, 1), (5, 50, 0)])
def test_a_gather_out_of_range_is_refused(wait_ms: int, from_rate: float, horizon: float) -> None:
    with pytest.raises(ValueError, match="busy gather"):
        BusyGather(wait_ms, from_rate, horizon=horizon)


class FakeConsumer:
    """Answers `poll` with the next message and records how long each `consume` may wait."""

    def __init__(self, polls: list[Any]) -> None:
        self.polls = polls
        self.consume_waits: list[float] = []

    def poll(self, timeout: float) -> Any:
        return self.polls.pop(0)

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        self.consume_waits.append(timeout)
        return ["more"]


class NoLag:
    def sample(self) -> None:
        pass


@pytest.fixture
def consumer() -> Iterator[BatchConsumer]:
    made = BatchConsumer(
        "127.0.0.1:9",  # never reached
        "busy-gather-test",
        ["orders"],
        _no_handler,
        service="test",
        dead_letters=None,  # type: ignore[arg-type]
        busy_gather_ms=5,
    )
    yield made
    made._consumer.close()


async def _no_handler(message: Any) -> None:
    raise AssertionError("nothing is handled here")


def test_a_fetch_waits_for_the_rest_of_its_batch_only_when_the_consumer_is_busy(
    consumer: BatchConsumer,
) -> None:
    real = consumer._consumer
    fake = FakeConsumer(["first", "first", None])
    consumer._consumer = fake  # type: ignore[assignment]
    consumer._lag = NoLag()  # type: ignore[assignment]
    try:
        fetched: list[list[Any]] = [list(consumer._fetch())]  # quiet so far: no wait
        consumer._gather.took(300)  # as busy as 300 events a second
        fetched.append(list(consumer._fetch()))  # busy: waits for more
        fetched.append(list(consumer._fetch()))  # nothing came: nothing to wait for
    finally:
        consumer._consumer = real
    assert fetched == [["first", "more"], ["first", "more"], []]
    assert fake.consume_waits == [0.0, 0.005]
