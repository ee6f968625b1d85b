"""The backlog admission's decisions (services/orders/backlog.py), on a count set by hand."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import psycopg
import pytest

from services.kit.runtime import Periodic
from services.orders.backlog import NOT_COUNTED, TRUSTED_SECONDS, Backlog, PipelineBacklogged
from tests.support import Clock, eventually


def backlog(limit: int, clock: Clock) -> Backlog:
    no_pool = cast(Any, None)  # the count is set with `counted`, as the job's round sets it
    return Backlog(no_pool, limit, check_seconds=0.25, retry_after=2, clock=clock)


def test_creates_are_admitted_up_to_the_limit_counting_their_own_since_the_count() -> None:
    clock = Clock(50.0)
    gate = backlog(5, clock)
    gate.counted(3, clock.now, admitted=0, in_flight=0)

    gate.admit()
    gate.admit()
    with pytest.raises(PipelineBacklogged) as refused:
        gate.admit()

    assert refused.value.retry_after == 2
    assert refused.value.status == 503
    assert gate.unsettled == 5
    gate.counted(4, clock.now, admitted=gate._admitted, in_flight=0)  # one settled meanwhile
    gate.admit()


def test_a_create_that_wrote_no_order_is_not_counted_here_nor_against_a_later_count() -> None:
    clock = Clock(50.0)
    gate = backlog(3, clock)
    gate.counted(1, clock.now, admitted=0, in_flight=0)
    asked, admitted = clock.now, gate._admitted
    with gate.admission():  # a retry whose key was taken: nothing written
        pass
    gate.not_written()
    assert gate.unsettled == 1

    gate.counted(1, asked, admitted=admitted, in_flight=0)

    assert gate.unsettled == 1
    gate.admit()
    gate.admit()
    with pytest.raises(PipelineBacklogged):
        gate.admit()


def test_no_count_an_old_count_or_no_limit_admits() -> None:
    clock = Clock(50.0)
    never_counted = backlog(1, clock)
    for _ in range(3):
        never_counted.admit()

    stale = backlog(1, clock)
    stale.counted(10, clock.now, admitted=0, in_flight=0)
    with pytest.raises(PipelineBacklogged):
        stale.admit()
    assert stale.trusted
    clock.now += TRUSTED_SECONDS + 0.01
    assert not stale.trusted
    stale.admit()

    off = backlog(0, clock)
    off.counted(10_000, clock.now, admitted=0, in_flight=0)
    off.admit()


def test_creates_not_committed_or_admitted_since_a_count_was_asked_are_added_to_it() -> None:
    clock = Clock(50.0)
    gate = backlog(4, clock)
    with gate.admission():  # admitted before the count, committed after it asked
        asked, admitted, in_flight = clock.now, gate._admitted, gate._in_flight
    gate.admit()
    gate.admit()  # both while the count below was running

    gate.counted(1, asked, admitted=admitted, in_flight=in_flight)

    assert gate.unsettled == 4
    with pytest.raises(PipelineBacklogged), gate.admission():
        pass
    assert gate._in_flight == 0


class DownPool:
    """A pool whose database is unreachable; counts the connections asked of it."""

    def __init__(self) -> None:
        self.asked = 0

    def connection(self) -> Any:
        self.asked += 1
        raise psycopg.OperationalError("connection refused")


async def test_a_failed_count_is_logged_once_and_the_last_count_ages_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock(50.0)
    pool = DownPool()
    gate = Backlog(cast(Any, pool), 1, check_seconds=0.25, retry_after=2, clock=clock)
    gate.counted(5, clock.now, admitted=0, in_flight=0)
    job = Periodic("unsettled-orders", 0.001, gate.count, failing=NOT_COUNTED)

    with caplog.at_level(logging.WARNING, logger="services.kit.runtime"):
        task = asyncio.create_task(job.run())

        async def three_rounds() -> bool:
            return pool.asked >= 3

        await eventually(three_rounds, within=5, what="three failed counts")
        job.stop()
        await task

    assert [r.message for r in caplog.records].count(
        "unsettled orders not counted; creates are admitted once the last count is too old"
    ) == 1
    with pytest.raises(PipelineBacklogged):
        gate.admit()
    clock.now += TRUSTED_SECONDS + 0.01
    gate.admit()
