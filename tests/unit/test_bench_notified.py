"""After each rate the bench waits for the notifications to catch up, and says how long it took."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest

import bench.__main__ as bench_main
from bench import stages


def counts(*values: int | None) -> Iterator[int | None]:
    yield from values
    while True:
        yield values[-1]


async def test_the_wait_ends_when_every_confirmed_order_is_notified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = counts(0, 1, 2, 3)
    asked: list[list[str]] = []

    def notified(order_ids: list[str]) -> int | None:
        asked.append(order_ids)
        return next(seen)

    monkeypatch.setattr(stages, "notified", notified)
    last_push = time.perf_counter()
    after = await bench_main.notifications_caught_up(["a", "b", "c"], last_push)

    assert after is not None
    assert 0.4 <= after < 5  # three polls 0.2 s apart before the fourth found them all
    assert len(asked) == 4
    assert asked[0] == ["a", "b", "c"]


async def test_notifications_that_never_catch_up_are_reported_as_such(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stages, "notified", lambda order_ids: 1)
    monkeypatch.setattr(bench_main, "NOTIFIED_WAIT_SECONDS", 0.5)

    assert await bench_main.notifications_caught_up(["a", "b"], time.perf_counter()) is None


async def test_a_database_that_cannot_say_ends_the_wait_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stages, "notified", lambda order_ids: None)

    started = time.perf_counter()
    after = await bench_main.notifications_caught_up(["a"], started)
    assert after is not None
    assert math.isnan(after)
    assert time.perf_counter() - started < 1


def test_the_orders_table_says_when_the_notifications_caught_up() -> None:
    assert bench_main.notified_text(1.234) == "1.2"
    assert bench_main.notified_text(None) == "not within 120 s"
    assert bench_main.notified_text(math.nan) == "unknown"
