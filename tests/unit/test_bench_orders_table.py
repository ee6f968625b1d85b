"""The orders table says how fast one core was just before each rate."""

from __future__ import annotations

from bench.__main__ import RateResult, orders_table


def test_each_rate_carries_the_core_speed_measured_before_it() -> None:
    measured = RateResult(rate=20, seconds=15, placed=300, confirmed=300, throughput=20.0)
    measured.latencies_ms = [10.0, 20.0, 30.0]
    measured.create_ms = [5.0]
    measured.core_seconds = 0.6034
    unmeasured = RateResult(rate=100, seconds=15)

    header, _, first, second = orders_table([measured, unmeasured])

    assert header.endswith("| one core's loop just before, s |")
    assert first.startswith("| 20 | 300 | 300 | 0 | 20.0 |")
    assert first.endswith("| 0.603 |")
    assert second.endswith("| - |")
