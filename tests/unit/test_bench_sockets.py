"""The socket-scale run measures how late the generator's own loop runs, and reports it."""

from __future__ import annotations

import asyncio
import os
import sys
import time

from bench.sockets import (
    LoopDelays,
    SocketScaleResult,
    collections_between,
    gc_pause_buckets,
    idle_cpu_ms_per_second,
    table,
)


async def test_a_blocked_loop_shows_as_a_late_timer() -> None:
    samples: list[float] = []
    async with LoopDelays(samples, interval=0.005):
        await asyncio.sleep(0.03)
        time.sleep(0.06)  # noqa: ASYNC251 - the point: the loop runs nothing else meanwhile
        await asyncio.sleep(0.03)
    assert samples, "sampled while the block ran"
    assert max(samples) >= 40.0
    assert min(samples) >= 0.0


def test_the_table_reports_the_delays_only_when_sampled() -> None:
    result = SocketScaleResult(asked=10, users=10)
    assert not any("event loop" in line for line in table(result))
    result.generator_delays_ms = [1.0, 2.0, 90.0]
    [row] = [line for line in table(result) if "event loop" in line]
    assert row.endswith("/ 90.0 |")


METRICS_BEFORE = """\
# HELP python_gc_pause_seconds Time the process stood still in a collection
python_gc_pause_seconds_bucket{generation="1",le="0.01"} 5.0
python_gc_pause_seconds_bucket{generation="1",le="0.1"} 6.0
python_gc_pause_seconds_bucket{generation="1",le="+Inf"} 6.0
python_gc_pause_seconds_bucket{generation="2",le="0.01"} 0.0
python_gc_pause_seconds_bucket{generation="2",le="0.1"} 1.0
python_gc_pause_seconds_bucket{generation="2",le="+Inf"} 1.0
python_gc_pause_seconds_count{generation="2"} 1.0
"""
METRICS_AFTER = (
    METRICS_BEFORE.replace('generation="1",le="0.01"} 5.0', 'generation="1",le="0.01"} 7.0')
    .replace('generation="1",le="0.1"} 6.0', 'generation="1",le="0.1"} 9.0')
    .replace('generation="1",le="+Inf"} 6.0', 'generation="1",le="+Inf"} 9.0')
)


def test_the_gateways_collections_between_two_samples_with_their_longest_bucket() -> None:
    before, after = gc_pause_buckets(METRICS_BEFORE), gc_pause_buckets(METRICS_AFTER)
    assert before["2"] == {"0.01": 0.0, "0.1": 1.0, "+Inf": 1.0}
    # Three generation-1 collections, one of them over 10 ms; no full collection.
    assert collections_between(before, after) == {"1": (3, "0.1")}
    result = SocketScaleResult(asked=1, users=1, gateway_collections={"1": (3, "0.1")})
    [row] = [line for line in table(result) if "garbage" in line]
    assert "generation 1: 3, each <= 0.1 s" in row


async def test_a_process_s_cpu_per_second_is_read_from_proc_while_it_works() -> None:
    busy = await asyncio.create_subprocess_exec(sys.executable, "-c", "while True: pass")
    try:
        await asyncio.sleep(0.2)
        busy_ms = await idle_cpu_ms_per_second(busy.pid, 0.5)
    finally:
        busy.kill()
        await busy.wait()
    assert busy_ms is not None
    assert busy_ms > 100  # a loop that never sleeps, even on a machine busy with other work
    idle = await idle_cpu_ms_per_second(os.getpid(), 0.3)  # this process only sleeps
    assert idle is not None
    assert idle < busy_ms / 2
    assert await idle_cpu_ms_per_second(busy.pid, 0.01) is None  # gone


def test_the_table_reports_the_gateways_cpu_while_the_connections_are_only_held() -> None:
    result = SocketScaleResult(asked=10, users=10)
    assert not any("only held" in line for line in table(result))
    result.gateway_idle_cpu_ms_per_s = 173.6
    [row] = [line for line in table(result) if "only held" in line]
    assert row.endswith("| 174 ms per second |")
