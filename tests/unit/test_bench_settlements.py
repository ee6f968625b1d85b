"""The generator's matching of pushes to the orders its creates placed, in either order."""

from __future__ import annotations

from bench.settlements import Settlements


def recorder() -> tuple[Settlements[str], list[tuple[str, str, float]]]:
    settled: list[tuple[str, str, float]] = []
    return Settlements(
        lambda order, status, at, _wall: settled.append((order, status, at))
    ), settled


def test_a_push_before_the_answer_settles_the_order_once_it_is_named_at_the_push_time() -> None:
    settlements, settled = recorder()

    settlements.on_update({"orderId": "a", "status": "CONFIRMED"})
    assert settled == []
    settlements.placed("a", "order a")

    [(order, status, at)] = settled
    assert (order, status) == ("order a", "CONFIRMED")
    settlements.placed("b", "order b")
    settlements.on_update({"orderId": "b", "status": "FAILED"})
    assert settled[1][:2] == ("order b", "FAILED")
    assert at <= settled[1][2]  # the early push's own time, not the answer's


def test_only_the_first_settling_push_counts_and_other_statuses_wait() -> None:
    settlements, settled = recorder()
    settlements.placed("a", "order a")

    settlements.on_update({"orderId": "a", "status": "CREATED"})
    settlements.on_update({"orderId": 7, "status": "CONFIRMED"})
    assert settled == []
    settlements.on_update({"orderId": "a", "status": "CONFIRMED"})
    settlements.on_update({"orderId": "a", "status": "FAILED"})

    assert [(order, status) for order, status, _ in settled] == [("order a", "CONFIRMED")]


def test_an_early_push_is_kept_once_and_used_once() -> None:
    settlements, settled = recorder()

    settlements.on_update({"orderId": "a", "status": "CONFIRMED"})
    settlements.on_update({"orderId": "a", "status": "FAILED"})
    settlements.placed("a", "order a")
    settlements.on_update({"orderId": "a", "status": "CONFIRMED"})

    assert [(order, status) for order, status, _ in settled] == [("order a", "CONFIRMED")]
