"""After each rate the bench waits for the notifications to catch up, and says how long it took."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import psycopg
import pytest

import bench.__main__ as bench_main
from bench import stages


class OneConnection:
    """Stands for the stack's database; counts how often it was connected to."""

    opened = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        OneConnection.opened += 1

    def __enter__(self) -> OneConnection:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        return None


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> type[OneConnection]:
    OneConnection.opened = 0
    monkeypatch.setattr(stages, "conninfo", lambda: "dbname=stack")
    monkeypatch.setattr(psycopg, "connect", OneConnection)
    return OneConnection


def counts(*values: int) -> Iterator[int]:
    yield from values
    while True:
        yield values[-1]


def test_the_wait_ends_when_every_confirmed_order_is_notified(
    monkeypatch: pytest.MonkeyPatch, database: type[OneConnection]
) -> None:
    seen = counts(0, 1, 2, 3)
    asked: list[list[str]] = []

    def notified(conn: object, order_ids: list[str]) -> int:
        asked.append(order_ids)
        return next(seen)

    monkeypatch.setattr(stages, "notified", notified)
    last_push = time.perf_counter()
    after = stages.notifications_caught_up(["a", "b", "c"], last_push, 120)

    assert isinstance(after, float)
    assert 0.4 <= after < 5  # three polls 0.2 s apart before the fourth found them all
    assert len(asked) == 4
    assert asked[0] == ["a", "b", "c"]
    assert database.opened == 1  # every poll on the same connection


def test_notifications_that_never_catch_up_are_reported_as_such(
    monkeypatch: pytest.MonkeyPatch, database: type[OneConnection]
) -> None:
    monkeypatch.setattr(stages, "notified", lambda conn, order_ids: 1)

    after = stages.notifications_caught_up(["a", "b"], time.perf_counter(), 0.6)
    assert after == "not within 1 s"


def test_a_database_that_cannot_say_ends_the_wait_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refused(*args: Any, **kwargs: Any) -> None:
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(stages, "conninfo", lambda: "dbname=stack")
    monkeypatch.setattr(psycopg, "connect", refused)

    started = time.perf_counter()
    after = stages.notifications_caught_up(["a"], started, 120)
    assert after == "database: connection refused"
    assert time.perf_counter() - started < 1

    monkeypatch.setattr(stages, "conninfo", lambda: None)
    assert stages.notifications_caught_up(["a"], started, 120) == "no running stack"


def test_the_orders_table_says_when_the_notifications_caught_up() -> None:
    assert bench_main.notified_text(1.234) == "1.2"
    assert bench_main.notified_text("not within 120 s") == "not within 120 s"
    assert bench_main.notified_text("database: connection refused") == (
        "database: connection refused"
    )
