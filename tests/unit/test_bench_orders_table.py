"""The orders table says how fast one core was just before each rate; the CPU table says what
the notifications service made per order."""

from __future__ import annotations

from bench import stages
from bench.__main__ import RateResult, cpu_table, orders_table


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


def test_the_cpu_table_says_what_the_notifications_service_made_per_order() -> None:
    busy = RateResult(rate=400, seconds=15, cpu_ms_per_order={"orders": 0.9})
    busy.notified = stages.Notified(
        per_order={"order.created": 0.25, "order.confirmed": 1.0}, deliveries_per_order=1.25
    )
    down = RateResult(rate=20, seconds=15, cpu_ms_per_order={"orders": 2.7})
    down.notified = stages.Notified(unavailable="no running stack")

    lines = cpu_table([down, busy])

    assert "| in-app notifications: order.created | no running stack | 0.25 |" in lines
    assert "| in-app notifications: order.confirmed | no running stack | 1.00 |" in lines
    assert "| deliveries handed to a channel | no running stack | 1.25 |" in lines
