"""The kit runtime supervises background jobs: restart with backoff, stop, kill, reports."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.kit.metrics import JOB_RESTARTS, JOB_UP
from services.kit.runtime import Backoff, JobStuck, Periodic, Runtime, wait_event
from services.kit.settings import ServiceSettings
from services.kit.web import create_service_app

FAST = Backoff(initial=0.01, maximum=0.02, healthy=60.0)


class Recorder:
    """A job that counts its runs, fails the first `failures` of them, then runs until stopped."""

    def __init__(self, runs: list[Recorder], failures: int = 0) -> None:
        self.runs = runs
        self.failures = failures
        self.stopped = asyncio.Event()
        self.finished_cleanly = False

    async def run(self) -> None:
        self.runs.append(self)
        if len(self.runs) <= self.failures:
            raise RuntimeError(f"failure {len(self.runs)}")
        await self.stopped.wait()
        self.finished_cleanly = True

    def stop(self) -> None:
        self.stopped.set()


async def until(condition: Callable[[], bool], within: float = 2.0) -> None:
    for _ in range(int(within / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met in time")


async def run_until(job: Periodic, condition: Callable[[], bool]) -> None:
    """Run `job` until `condition` holds, then stop it and wait for it to end."""
    task = asyncio.create_task(job.run())
    await until(condition)
    job.stop()
    async with asyncio.timeout(1):
        await task


async def test_a_failing_job_is_restarted_with_a_fresh_instance_and_counted() -> None:
    runs: list[Recorder] = []
    runtime = Runtime("unit-restart", backoff=FAST)
    runtime.add("worker", lambda: Recorder(runs, failures=2))
    before = JOB_RESTARTS.labels("unit-restart", "worker")._value.get()
    runtime.start()
    await until(lambda: len(runs) == 3)
    assert len({id(r) for r in runs}) == 3
    assert JOB_RESTARTS.labels("unit-restart", "worker")._value.get() == before + 2
    assert runtime.states() == {"worker": "running"}
    assert JOB_UP.labels("unit-restart", "worker")._value.get() == 1
    await runtime.stop()
    assert runs[-1].finished_cleanly
    assert runtime.states() == {"worker": "stopped"}
    assert JOB_UP.labels("unit-restart", "worker")._value.get() == 0


async def test_a_job_that_ends_on_its_own_is_restarted() -> None:
    runs: list[int] = []

    class Quitter:
        async def run(self) -> None:
            runs.append(1)

        def stop(self) -> None:
            pass

    runtime = Runtime("unit-quit", backoff=FAST)
    runtime.add("quitter", Quitter)
    runtime.start()
    await until(lambda: len(runs) >= 3)
    await runtime.stop()


async def test_readiness_fails_after_repeated_failures_and_while_stopped() -> None:
    runs: list[Recorder] = []
    runtime = Runtime("unit-ready", backoff=Backoff(initial=0.01, maximum=0.01, healthy=60))
    runtime.add("flaky", lambda: Recorder(runs, failures=1000))
    assert runtime.readiness_problems() == {"flaky": "stopped"}
    runtime.start()
    await until(lambda: len(runs) >= 4)
    problem = runtime.readiness_problems()["flaky"]
    assert "times in a row" in problem
    assert "RuntimeError" in problem
    await runtime.stop()


async def test_readiness_recovers_once_a_restarted_job_keeps_running() -> None:
    runs: list[Recorder] = []
    runtime = Runtime(
        "unit-recover",
        backoff=Backoff(initial=0.01, maximum=0.01, healthy=60),
        ready_after_running=0.2,
    )
    runtime.add("listener", lambda: Recorder(runs, failures=4))
    runtime.start()
    await until(lambda: len(runs) == 5)
    assert "times in a row" in runtime.readiness_problems()["listener"]
    await until(lambda: not runtime.readiness_problems())
    assert runtime.states() == {"listener": "running"}
    await runtime.stop()
    assert runtime.readiness_problems() == {"listener": "stopped"}


async def test_jobs_stop_in_reverse_order_of_registration() -> None:
    order: list[str] = []

    class Named:
        def __init__(self, name: str) -> None:
            self.name = name
            self.stopped = asyncio.Event()

        async def run(self) -> None:
            await self.stopped.wait()
            order.append(self.name)

        def stop(self) -> None:
            self.stopped.set()

    runtime = Runtime("unit-order")
    for name in ("relay", "effects", "consumer"):
        runtime.add(name, lambda name=name: Named(name))  # type: ignore[misc]
    runtime.start()
    await asyncio.sleep(0)
    await runtime.stop()
    assert order == ["consumer", "effects", "relay"]


async def test_a_job_that_ignores_stop_is_cancelled_after_the_stop_timeout() -> None:
    cancelled = asyncio.Event()

    class Stubborn:
        async def run(self) -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

        def stop(self) -> None:
            pass

    runtime = Runtime("unit-stubborn", stop_timeout=0.05)
    runtime.add("stubborn", Stubborn)
    runtime.start()
    await asyncio.sleep(0)
    await runtime.stop()
    assert cancelled.is_set()


async def test_kill_cancels_without_stopping_and_start_runs_a_new_one() -> None:
    runs: list[Recorder] = []
    runtime = Runtime("unit-kill")
    runtime.add("worker", lambda: Recorder(runs))
    runtime.start()
    await until(lambda: len(runs) == 1)
    await runtime.kill("worker")
    assert not runs[0].stopped.is_set(), "a kill is a crash, not a stop"
    assert not runs[0].finished_cleanly
    assert runtime.states() == {"worker": "stopped"}
    runtime.start("worker")
    await until(lambda: len(runs) == 2)
    await runtime.stop()


async def test_kill_repeats_a_swallowed_cancel_and_fails_loudly_on_a_job_that_never_ends() -> None:
    class SwallowsOnce:
        """Loses the first cancel, as `wait_for` on Python 3.11 can."""

        def __init__(self) -> None:
            self.swallowed = 0

        async def run(self) -> None:
            while True:
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    if self.swallowed:
                        raise
                    self.swallowed += 1
                    asyncio.current_task().uncancel()  # type: ignore[union-attr]

        def stop(self) -> None:
            pass

    class Immortal:
        """Swallows every cancel until released."""

        released = False

        async def run(self) -> None:
            while True:
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    if self.released:
                        raise
                    asyncio.current_task().uncancel()  # type: ignore[union-attr]

        def stop(self) -> None:
            pass

    runtime = Runtime("unit-swallow", kill_timeout=0.5)
    job = SwallowsOnce()
    runtime.add("swallows", lambda: job)
    immortal = Immortal()
    runtime.add("immortal", lambda: immortal)
    runtime.start()
    await asyncio.sleep(0)
    await runtime.kill("swallows")
    assert job.swallowed == 1
    with pytest.raises(JobStuck):
        await runtime.kill("immortal")
    immortal.released = True
    await runtime.kill("immortal")


async def test_periodic_runs_now_then_every_interval_and_survives_a_failed_round() -> None:
    calls: list[int] = []

    async def work() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first round fails")
        return 1

    await run_until(Periodic("tick", 0.01, work, report="ticked"), lambda: len(calls) >= 3)


async def test_periodic_logs_a_round_that_did_something_and_never_one_with_nothing_to_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    results: list[int | None] = [2, 0, None]

    async def work() -> int | None:
        return results.pop(0) if results else None

    with caplog.at_level(logging.INFO, logger="services.kit.runtime"):
        await run_until(Periodic("tick", 0.01, work, report="ticked"), lambda: not results)
    assert [(r.message, getattr(r, "count", None)) for r in caplog.records] == [("ticked", 2)]


async def test_periodic_logs_the_first_failure_of_an_outage_and_the_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes = [True, False, False, False, True, False, True]

    async def work() -> None:
        if outcomes and not outcomes.pop(0):
            raise RuntimeError("database down")

    with caplog.at_level(logging.INFO, logger="services.kit.runtime"):
        await run_until(Periodic("tick", 0.001, work, failing="not ticked"), lambda: not outcomes)
    assert [r.message for r in caplog.records] == [
        "not ticked",
        "periodic job succeeded again",
        "not ticked",
        "periodic job succeeded again",
    ]


async def test_wait_event_reports_whether_the_event_fired() -> None:
    event = asyncio.Event()
    assert not await wait_event(event, 0.01)
    event.set()
    assert await wait_event(event, 10)


def test_the_probes_report_the_jobs() -> None:
    runs: list[Recorder] = []
    runtime = Runtime("unit-probes")
    runtime.add("worker", lambda: Recorder(runs))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.attach(app)
        runtime.start()
        yield
        await runtime.stop()

    app = create_service_app(ServiceSettings(), "probes", lifespan)

    @app.post("/kill")
    async def kill() -> None:
        await runtime.kill("worker")

    @app.post("/orphan")
    async def orphan() -> None:
        # The supervisor task ends without being asked: what a bug in it would look like.
        slot = runtime._slots["worker"]
        assert slot.task is not None
        slot.task.cancel()
        await asyncio.wait({slot.task})

    with TestClient(app) as client:
        assert client.get("/readyz").json()["checks"]["jobs"] == "ok"
        assert client.get("/healthz").status_code == 200
        client.post("/kill")
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "worker: stopped" in ready.json()["checks"]["jobs"]
        assert client.get("/healthz").status_code == 200
        assert client.app.state.runtime is runtime  # type: ignore[attr-defined]

    runs.clear()
    with TestClient(app) as client:
        client.post("/orphan")
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["problems"] == {"jobs.worker": "supervisor ended unexpectedly"}
