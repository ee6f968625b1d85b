"""Survivors of full collections are frozen: a cycle among them outlives its last reference
until they are thawed; the thaw comes with time or once enough connections closed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from services.kit.heap import MIN_CLOSED_TO_THAW, FrozenSurvivors


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def survivors() -> Iterator[FrozenSurvivors]:
    frozen = FrozenSurvivors(600.0)
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


def test_a_cycle_that_survived_a_full_collection_waits_for_the_thaw(
    survivors: FrozenSurvivors,
) -> None:
    kept = _cycle()
    held = kept()  # alive through the next full collection
    gc.collect()
    assert gc.get_freeze_count() > 0
    del held

    gc.collect()
    assert kept() is not None, "frozen: the full collection did not visit it"
    assert survivors.thaw() >= 2
    assert kept() is None


def test_a_new_cycle_is_collected_without_a_thaw(survivors: FrozenSurvivors) -> None:
    gc.collect()
    fresh = _cycle()

    gc.collect()
    assert fresh() is None


def test_the_thaw_is_due_after_its_time_or_a_quarter_of_the_connections_closing() -> None:
    clock, closed, open_now = Clock(), [0], [20_000]
    survivors = FrozenSurvivors(
        600.0, closed=lambda: closed[0], open_now=lambda: open_now[0], clock=clock
    )
    assert not survivors.due()
    clock.now += 600
    assert survivors.due()

    clock.now -= 600
    closed[0] = 4_999
    assert not survivors.due()
    closed[0] = 5_000
    assert survivors.due(), "a quarter of those open"
    survivors.thaw()
    assert not survivors.due(), "counted again from the thaw"
    closed[0] += 5_000
    assert survivors.due()
    open_now[0] = 100
    closed[0] = MIN_CLOSED_TO_THAW - 1
    assert not survivors.due(), "a few closed among a few open wait for more"
