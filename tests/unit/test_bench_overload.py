"""The overload report's recovery: windows by placement time after the burst."""

from __future__ import annotations

import asyncio

import pytest

from bench.overload import OverloadResult, Placed, creates_out, table


def result(*placed: Placed) -> OverloadResult:
    run = OverloadResult(
        rate=100,
        seconds=60,
        recovery_rate=20,
        recovery_seconds=12,
        recovered_ms=150,
        customers=1,
        burst_ended=1000.0,
    )
    run.placed = list(placed)
    return run


def settled(at: float, ms: float) -> Placed:
    return Placed(
        burst=False, at=at, status=201, order_id="o", settled_at=at + ms / 1000, settled_by="push"
    )


def test_the_recovery_shows_each_window_after_the_burst_and_counts_only_pushed_orders() -> None:
    burst = Placed(
        burst=True, at=990.0, status=201, order_id="b", settled_at=995.0, settled_by="push"
    )
    unsettled = Placed(burst=False, at=1001.0, status=201, order_id="u")
    run = result(
        burst,
        settled(1000.5, 3000),
        settled(1002.0, 1000),
        unsettled,
        settled(1006.0, 40),
        settled(1011.0, 30),
    )

    shape = run.after_burst()

    assert [start for start, _ in shape] == [0.0, 5.0, 10.0]
    assert sorted(shape[0][1]) == pytest.approx([1000.0, 3000.0])
    assert [ms for _, [ms] in shape[1:]] == pytest.approx([40.0, 30.0])
    row = next(line for line in table(run) if line.startswith("| after the burst"))
    assert "0-5 s: 1000 / 3000; 5-10 s: 40 / 40; 10-15 s: 30 / 30" in row


def test_an_order_failed_for_stock_recovers_its_window_and_one_read_back_does_not() -> None:
    out_of_stock = Placed(
        burst=False, at=1003.0, status=201, order_id="f", settled_at=1003.03, settled_by="failed"
    )
    read_back = Placed(
        burst=False, at=1001.0, status=201, order_id="r", settled_at=1009.0, settled_by="read back"
    )

    assert (
        result(settled(1000.5, 40), out_of_stock, settled(1004.0, 30)).recovery_seconds_taken() == 0
    )
    assert out_of_stock.pushed_ms() == pytest.approx(30.0)
    assert read_back.pushed_ms() is None
    late = result(settled(1000.5, 40), read_back, settled(1002.0, 30), settled(1003.0, 20))
    assert late.recovery_seconds_taken() == 2


def steady(ms_at: dict[float, float], seconds: float = 12) -> OverloadResult:
    """20 orders/s after the burst, each settled in 30 ms but the ones `ms_at` names."""
    orders = [1000.0 + i / 20 for i in range(int(seconds * 20))]
    return result(*(settled(at, ms_at.get(round(at - 1000.0, 2), 30.0)) for at in orders))


def test_one_slow_order_in_a_window_is_within_its_p99_and_two_are_not() -> None:
    assert steady({}).recovery_seconds_taken() == 0
    assert steady({9.5: 400.0}).recovery_seconds_taken() == 0
    # Two slow orders in the windows starting at 0 to 2 s: from 3 s on it holds again.
    assert steady({2.0: 400.0, 2.5: 400.0}).recovery_seconds_taken() == 3
    # The last whole window (7-12 s) must hold too.
    assert steady({11.0: 400.0, 11.9: 400.0}).recovery_seconds_taken() is None


def test_a_refused_create_after_the_burst_keeps_its_windows_from_counting() -> None:
    run = steady({})
    run.placed.append(Placed(burst=False, at=1001.0, status=503))

    assert run.recovery_seconds_taken() == 2
    row = next(line for line in table(run) if line.startswith("| latency recovered"))
    assert "2 s (from then on every 5 s of creates accepted and settled, p99 <= 150 ms)" in row


def refusal(cause: str, ms: float) -> Placed:
    return Placed(burst=True, at=990.0, status=503, post_ms=ms, retry_after=True, cause=cause)


def test_refusal_times_are_given_by_cause_the_most_frequent_first() -> None:
    held = [refusal("503 overloaded", ms) for ms in (1.0, 2.0, 3.0)]
    run = result(*held, refusal("503 pipeline-backlogged", 200.0))

    row = next(line for line in table(run) if line.startswith("| refusal time p50 / p99 ms by"))

    assert row == (
        "| refusal time p50 / p99 ms by cause | 503 overloaded x3: 2.0 / 3.0; "
        "503 pipeline-backlogged x1: 200.0 / 200.0 |"
    )


def test_the_slowest_order_and_the_generators_own_long_collections_after_the_burst() -> None:
    run = result(settled(1001.0, 40), settled(1007.5, 120), settled(1011.0, 30))
    run.collections = [(995.0, 2, 300.0), (1003.0, 0, 2.0), (1007.4, 2, 105.0)]

    [(after, generation, ms)] = run.collections_after_burst()
    assert after == pytest.approx(7.4)
    assert (generation, ms) == (2, 105.0)
    rows = table(run)
    slowest = next(line for line in rows if line.startswith("| the slowest order"))
    assert "7.5 s, 120 ms" in slowest
    collections = next(line for line in rows if "garbage collections" in line)
    assert "7.4 s, 2, 105 ms" in collections
    assert "300" not in collections, "a collection during the burst is not the recovery's"


async def test_only_the_creates_still_out_are_awaited_and_a_failed_one_raises() -> None:
    async def ok() -> None:
        return None

    async def failing() -> None:
        raise RuntimeError("lost")

    done = [asyncio.create_task(ok()) for _ in range(3)]
    await asyncio.sleep(0)
    out = asyncio.create_task(asyncio.sleep(0.01))
    await creates_out([*done, out])
    assert out.done()

    broken = asyncio.create_task(failing())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="lost"):
        await creates_out([*done, broken])
