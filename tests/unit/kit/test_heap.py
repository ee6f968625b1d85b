"""Survivors of full collections are frozen: a cycle among them outlives its last reference
until a full collection thaws them, which is due with time or once enough connections closed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from services.kit.heap import MIN_CLOSED_TO_THAW, FrozenSurvivors
from tests.support import Clock


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def clock() -> Clock:
    return Clock(1000.0)


@pytest.fixture
def survivors(clock: Clock) -> Iterator[FrozenSurvivors]:
    frozen = FrozenSurvivors(600.0, clock)
    frozen.install()
    try:
        yield frozen
    finally:
        frozen.uninstall()
    assert gc.get_freeze_count() == 0


def _cycle() -> weakref.ref[Node]:
    first, second = Node(), Node()
    first.other, second.other = second, first
    return weakref.ref(first)


def _thaws() -> float:
    return REGISTRY.get_sample_value("python_gc_thaws_total") or 0.0


def test_a_cycle_that_survived_a_full_collection_waits_for_the_thaw(
    survivors: FrozenSurvivors, clock: Clock
) -> None:
    kept = _cycle()
    held = kept()  # alive through the next full collection
    gc.collect()
    assert gc.get_freeze_count() > 0
    del held

    gc.collect()
    assert kept() is not None, "frozen: the full collection did not visit it"
    thaws = _thaws()
    clock.now += 600
    gc.collect()
    assert kept() is None, "the thaw's collection visited everything"
    assert _thaws() == thaws + 1
    assert gc.get_freeze_count() > 0, "and froze its survivors again"
    assert not survivors.due()


def _frozen_gauge() -> float:
    return REGISTRY.get_sample_value("python_gc_frozen_objects") or 0.0


def test_the_gauge_counts_what_each_freeze_adds_and_starts_again_at_a_thaw(
    survivors: FrozenSurvivors, clock: Clock
) -> None:
    gc.collect()
    assert _frozen_gauge() >= gc.get_freeze_count() > 0
    before = _frozen_gauge()
    kept = [Node() for _ in range(5_000)]
    gc.collect()
    assert _frozen_gauge() >= before + len(kept), "each freeze adds its survivors"
    assert _frozen_gauge() >= gc.get_freeze_count()

    del kept
    clock.now += 600
    gc.collect()
    assert gc.get_freeze_count() <= _frozen_gauge() < before + 5_000, "counted again at the thaw"


def test_uninstalling_gives_everything_back_and_the_gauge_reads_zero(clock: Clock) -> None:
    survivors = FrozenSurvivors(600.0, clock)
    survivors.install()
    gc.collect()
    assert _frozen_gauge() > 0
    survivors.uninstall()
    assert gc.get_freeze_count() == 0
    assert _frozen_gauge() == 0


def test_a_new_cycle_is_collected_without_a_thaw(survivors: FrozenSurvivors) -> None:
    gc.collect()
    fresh = _cycle()

    gc.collect()
    assert fresh() is None


def test_the_thaw_is_due_after_its_time_or_a_quarter_of_the_connections_closing(
    clock: Clock,
) -> None:
    closed, open_now = [0], [20_000]
    survivors = FrozenSurvivors(600.0, clock)
    survivors.watch_connections(closed=lambda: closed[0], open_now=lambda: open_now[0])
    assert not survivors.due()
    clock.now += 600
    assert survivors.due()

    clock.now -= 600
    closed[0] = 4_999
    assert not survivors.due()
    closed[0] = 5_000
    assert survivors.due(), "a quarter of those open"
    open_now[0] = 100
    closed[0] = MIN_CLOSED_TO_THAW - 1
    assert not survivors.due(), "a few closed among a few open wait for more"


def test_closed_connections_are_counted_from_the_last_thaw(
    survivors: FrozenSurvivors, clock: Clock
) -> None:
    closed = [7_000]
    survivors.watch_connections(closed=lambda: closed[0], open_now=lambda: 0)
    assert not survivors.due(), "closed before it watched"
    closed[0] += MIN_CLOSED_TO_THAW
    assert survivors.due()
    gc.collect()
    assert not survivors.due(), "counted again from the thaw"
