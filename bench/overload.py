"""The overload run: creates offered open-loop above what the platform sustains, then at a low
rate, to see what overload does and how fast the platform comes back.

The burst offers `rate` orders/s for `seconds` (by default twice the best rate the rate runs
sustained, for 60 s); then the same generator goes on at `recovery_rate` for
`recovery_seconds`. It reports how many creates were accepted (201) and refused (503 or 429,
with or without Retry-After), how fast the refusals came, whether every accepted order settled
(its CONFIRMED or FAILED push arrived, or, for one whose push did not, its status read back is
no longer PENDING), whether every customer's Socket.IO connection stayed up, and how long after
the burst the orders placed were settled (CONFIRMED or FAILED pushed) within `recovered_ms`
again, with the slowest order after the burst.

The latency after the burst is read by the generator, so its own pauses would count as the
platform's: a full garbage collection of what the burst left in it (tens of thousands of orders
and their finished tasks) paused it for 100 ms and more, and a gather of every task at the end
queued a callback per task ahead of the last pushes. So the generator freezes its heap when the
burst ends (`gc.freeze`: its later collections visit only what is new), awaits only the creates
still out (`creates_out`), and reports its own collections of 10 ms or more after the burst.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from bench import cpu
from bench.live_client import LiveClient
from bench.settlements import Settlements
from bench.stats import percentile, problem_cause
from services.kit.runtime import wait_event

SETTLE_SECONDS = 60.0
RECOVERY_WINDOW_SECONDS = 5.0
SHAPE_SECONDS = 5.0


class Client(Protocol):
    """What the overload run needs of the generator's HTTP client."""

    async def create(self, token: str, product: str) -> tuple[int, dict[str, str], Any]: ...

    async def status(self, token: str, order_id: str) -> str | None: ...


PUSHED = ("push", "failed")
"""How an order settled when its CONFIRMED or FAILED push arrived."""


@dataclass
class Placed:
    burst: bool
    at: float
    status: int | None = None
    """HTTP status of the create; None when it got no answer (timeout, connection error)."""
    post_ms: float = 0.0
    retry_after: bool = False
    cause: str | None = None
    """A refusal's status and problem type ("503 overloaded", bench.stats.problem_cause)."""
    order_id: str | None = None
    settled_at: float | None = None
    settled_by: str | None = None
    """"push" (CONFIRMED pushed), "failed" (FAILED pushed: out of stock) or "read back"."""

    def pushed_ms(self) -> float | None:
        """Create -> its CONFIRMED or FAILED push, in ms; None if no push settled it.

        A FAILED order (its stock ran out in the burst) was answered as quickly as a confirmed
        one, so recovery counts it; an order read back after the run did not recover."""
        if self.settled_at is None or self.settled_by not in PUSHED:
            return None
        return (self.settled_at - self.at) * 1000


@dataclass
class OverloadResult:
    rate: int
    seconds: float
    recovery_rate: int
    recovery_seconds: float
    recovered_ms: float
    customers: int
    placed: list[Placed] = field(default_factory=list)
    disconnects: int = 0
    connected_before: int = 0
    connected_after: int = 0
    burst_ended: float = 0.0
    cpu_ms_per_attempt: dict[str, float] = field(default_factory=dict)
    collections: list[tuple[float, int, float]] = field(default_factory=list)
    """The generator's own garbage collections while creates were placed or awaited: (when,
    `time.perf_counter()`; generation; pause ms). A pause delays every push the generator reads
    meanwhile, so it shows in the latency it measures."""

    def collections_after_burst(self) -> list[tuple[float, int, float]]:
        """(seconds after the burst, generation, ms) of the collections of 10 ms or more."""
        return [
            (at - self.burst_ended, generation, ms)
            for at, generation, ms in self.collections
            if at >= self.burst_ended and ms >= 10
        ]

    def burst(self) -> list[Placed]:
        return [p for p in self.placed if p.burst]

    def accepted(self) -> list[Placed]:
        return [p for p in self.placed if p.order_id is not None]

    def refused(self, orders: list[Placed]) -> list[Placed]:
        return [p for p in orders if p.status in (429, 503)]

    def failed(self, orders: list[Placed]) -> list[Placed]:
        return [p for p in orders if p.order_id is None and p.status not in (429, 503)]

    def settle_ms(self, orders: list[Placed]) -> list[float]:
        return [(p.settled_at - p.at) * 1000 for p in orders if p.settled_at and p.settled_by]

    def after_burst(self, seconds: float = SHAPE_SECONDS) -> list[tuple[float, list[float]]]:
        """Create -> settling push (`Placed.pushed_ms`) of the orders placed after the burst, in
        windows of `seconds` by placement time: (window start, their ms), the recovery's shape."""
        windows: dict[int, list[float]] = {}
        for order in self.placed:
            if order.burst:
                continue
            index = int((order.at - self.burst_ended) / seconds)
            found = windows.setdefault(index, [])
            ms = order.pushed_ms()
            if ms is not None:
                found.append(ms)
        return [(index * seconds, windows[index]) for index in sorted(windows)]

    def recovery_seconds_taken(self) -> float | None:
        """Seconds after the burst until every later window's orders settled within the bound.

        Windows of `RECOVERY_WINDOW_SECONDS` by placement time, one starting at each whole
        second after the burst for as long as a whole window fits in the run: a window is good
        when every create of it was accepted and settled by its push, and their p99 create ->
        settling push is within `recovered_ms`. At 20 orders/s a window holds 100 orders, so
        its p99 allows one outlier, as a p99 does; a one-second window's p99 would be its
        slowest order. Recovered from the first start after which every window is good; None
        when the last one is not.
        """
        after = [p for p in self.placed if not p.burst]
        if not after:
            return None
        last_start = max(0, math.floor(self.recovery_seconds - RECOVERY_WINDOW_SECONDS))
        recovered_from: int | None = None
        for start in range(last_start + 1):
            window = [
                p
                for p in after
                if start <= p.at - self.burst_ended < start + RECOVERY_WINDOW_SECONDS
            ]
            latencies = [ms for ms in (p.pushed_ms() for p in window) if ms is not None]
            good = len(latencies) == len(window) and (
                not latencies or percentile(latencies, 99) <= self.recovered_ms
            )
            if not good:
                recovered_from = None
            elif recovered_from is None:
                recovered_from = start
        return None if recovered_from is None else float(recovered_from)


async def run_overload(
    client: Client,
    customers: Sequence[tuple[str, LiveClient]],
    products: list[str],
    *,
    rate: int,
    seconds: float,
    recovery_rate: int,
    recovery_seconds: float,
    recovered_ms: float,
) -> OverloadResult:
    result = OverloadResult(
        rate, seconds, recovery_rate, recovery_seconds, recovered_ms, len(customers)
    )
    by_id: dict[str, Placed] = {}
    all_settled = asyncio.Event()
    placing_over = False

    def settle(order: Placed, status: str, at: float, _at_wall: float) -> None:
        order.settled_at = at
        order.settled_by = "push" if status == "CONFIRMED" else "failed"
        if placing_over and all(p.settled_at for p in by_id.values()):
            all_settled.set()

    settlements: Settlements[Placed] = Settlements(settle)

    def on_disconnect(*_: Any) -> None:
        result.disconnects += 1

    for _, sio in customers:
        sio.on("order.updated", settlements.on_update)
        sio.on("disconnect", on_disconnect)

    async def place(i: int, order: Placed) -> None:
        token, _ = customers[i % len(customers)]
        started = time.perf_counter()
        try:
            status, headers, body = await client.create(token, products[i % len(products)])
        except (aiohttp.ClientError, ConnectionError, TimeoutError):
            order.post_ms = (time.perf_counter() - started) * 1000
            return
        order.post_ms = (time.perf_counter() - started) * 1000
        order.status = status
        order.retry_after = "retry-after" in {name.lower() for name in headers}
        if status in (200, 201) and isinstance(body, dict) and "id" in body:
            order.order_id = str(body["id"])
            by_id[order.order_id] = order
            settlements.placed(order.order_id, order)
        else:
            order.cause = problem_cause(status, body)

    collection_started = 0.0

    def timed(phase: str, info: dict[str, Any]) -> None:
        nonlocal collection_started
        if phase == "start":
            collection_started = time.perf_counter()
            return
        pause_ms = (time.perf_counter() - collection_started) * 1000
        result.collections.append((collection_started, info["generation"], pause_ms))

    gc.callbacks.append(timed)
    try:
        result.connected_before = sum(1 for _, sio in customers if sio.connected)
        roots = cpu.program_pids()
        cpu_before = cpu.sample(roots)
        tasks: list[asyncio.Task[None]] = []
        begin = time.perf_counter()
        schedule = [(True, rate, seconds), (False, recovery_rate, recovery_seconds)]
        offset = 0.0
        for burst, phase_rate, phase_seconds in schedule:
            for n in range(int(phase_rate * phase_seconds)):
                due = begin + offset + n / phase_rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                order = Placed(burst=burst, at=time.perf_counter())
                result.placed.append(order)
                tasks.append(asyncio.create_task(place(len(result.placed) - 1, order)))
            offset += phase_seconds
            if burst:
                result.burst_ended = begin + offset
                # What the burst left in the generator (its orders, their finished tasks) is
                # alive until the report: frozen, the generator's full collections during the
                # recovery visit only what is new, instead of pausing the reading of its pushes
                # for 100 ms or more (the collections are reported).
                gc.freeze()
        await creates_out(tasks)
        placing_over = True
        if not all(p.settled_at for p in by_id.values()):
            await wait_event(all_settled, SETTLE_SECONDS)
        result.cpu_ms_per_attempt = cpu.per_unit_ms(
            cpu_before, cpu.sample(roots), len(result.placed)
        )
        for order in by_id.values():
            if order.settled_at is None:
                token, _ = customers[result.placed.index(order) % len(customers)]
                status = await client.status(token, str(order.order_id))
                if status not in (None, "PENDING"):
                    order.settled_at, order.settled_by = time.perf_counter(), "read back"
        result.connected_after = sum(1 for _, sio in customers if sio.connected)
        for _, sio in customers:
            sio.off("disconnect")
    finally:
        gc.callbacks.remove(timed)
        gc.unfreeze()
    return result


async def creates_out(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for the creates still out. A gather of every task of a run would queue a callback
    for each of the thousands already done, ahead of the last orders' pushes, whose latency
    would then be the generator's."""
    for task in tasks:
        if task.done():
            task.result()  # what a create raised, if it did
    await asyncio.gather(*(task for task in tasks if not task.done()))


def _slowest(result: OverloadResult) -> str:
    after = [
        (p.at - result.burst_ended, ms)
        for p in result.placed
        if not p.burst and (ms := p.pushed_ms()) is not None
    ]
    if not after:
        return "none settled"
    at, ms = max(after, key=lambda placed: placed[1])
    return f"{at:.1f} s, {ms:.0f} ms"


def refusals_by_cause(refused: list[Placed]) -> str:
    """Each cause's refusal times, the most frequent first: "503 overloaded x900: 1.2 / 30.4"."""
    by_cause: dict[str, list[float]] = {}
    for placed in refused:
        by_cause.setdefault(placed.cause or "unknown", []).append(placed.post_ms)
    ordered = sorted(by_cause.items(), key=lambda item: -len(item[1]))
    return (
        "; ".join(
            f"{cause} x{len(ms)}: {percentile(ms, 50):.1f} / {percentile(ms, 99):.1f}"
            for cause, ms in ordered
        )
        or "none"
    )


def table(result: OverloadResult) -> list[str]:
    burst = result.burst()
    refused = result.refused(burst)
    accepted = [p for p in burst if p.order_id is not None]
    all_accepted = result.accepted()
    settled = [p for p in all_accepted if p.settled_at is not None]
    pushed = [p for p in all_accepted if p.settled_by in PUSHED]
    recovery = result.recovery_seconds_taken()
    refused_ms = [p.post_ms for p in refused]
    accepted_ms = [p.post_ms for p in accepted]
    lines = [
        "",
        f"## Overload ({result.rate} orders/s for {result.seconds:.0f} s, then "
        f"{result.recovery_rate} orders/s for {result.recovery_seconds:.0f} s)",
        "",
        "| | value |",
        "|---|---|",
        f"| creates offered in the burst | {len(burst)} |",
        f"| accepted (201) | {len(accepted)} |",
        f"| refused (503/429) | {len(refused)}, "
        f"{sum(1 for p in refused if p.retry_after)} with Retry-After |",
        f"| refusal time p50 / p99 ms | {percentile(refused_ms, 50):.1f} / "
        f"{percentile(refused_ms, 99):.1f} |",
        f"| refusal time p50 / p99 ms by cause | {refusals_by_cause(refused)} |",
        f"| accepted create p50 / p99 ms | {percentile(accepted_ms, 50):.1f} / "
        f"{percentile(accepted_ms, 99):.1f} |",
        f"| other errors or no answer | {len(result.failed(burst))} |",
        f"| accepted orders settled (burst and after) | {len(settled)} of {len(all_accepted)} "
        f"({len(pushed)} pushed, {len(settled) - len(pushed)} read back) |",
        f"| Socket.IO connections up (of {result.customers}) | {result.connected_before} at the "
        f"burst's start, {result.connected_after} at the end ({result.disconnects} dropped "
        "meanwhile) |",
        "| latency recovered after the burst | "
        + (
            f"{recovery:.0f} s (from then on every {RECOVERY_WINDOW_SECONDS:.0f} s of creates "
            f"accepted and settled, p99 <= {result.recovered_ms:.0f} ms)"
            if recovery is not None
            else f"not within {result.recovery_seconds:.0f} s (p99 <= {result.recovered_ms:.0f} ms "
            f"over every {RECOVERY_WINDOW_SECONDS:.0f} s of creates)"
        )
        + " |",
        "| after the burst, create -> CONFIRMED or FAILED pushed, p50 / max ms by "
        f"{SHAPE_SECONDS:.0f} s of placement | "
        + "; ".join(
            f"{start:.0f}-{start + SHAPE_SECONDS:.0f} s: "
            + (f"{percentile(ms, 50):.0f} / {max(ms):.0f}" if ms else "none settled")
            for start, ms in result.after_burst()
        )
        + " |",
        f"| the slowest order after the burst: s after it, ms | {_slowest(result)} |",
        "| the generator's own garbage collections of 10 ms or more after the burst: s after "
        "it, generation, ms | "
        + (
            "; ".join(
                f"{at:.1f} s, {generation}, {ms:.0f} ms"
                for at, generation, ms in result.collections_after_burst()
            )
            or "none"
        )
        + " |",
    ]
    if result.cpu_ms_per_attempt:
        top = sorted(result.cpu_ms_per_attempt.items(), key=lambda item: -item[1])[:6]
        lines.append(
            "| CPU ms per offered create | "
            + ", ".join(f"{name} {ms:.2f}" for name, ms in top)
            + " |"
        )
    return lines
