"""The kit runtime: everything a service runs beside its HTTP server, supervised one way.

A service registers its background jobs (outbox relays, Kafka consumers, periodic jobs, the
after-commit runner) with one `Runtime` in its lifespan. The runtime:

- runs each job in a task of its own and restarts one that fails or ends on its own, after an
  exponential backoff (`background_job_restarts_total`);
- stops them in reverse order of registration (register relays first and consumers last, so
  consumers stop first and the relay publishes what they wrote), each within one stop timeout
  after which it is cancelled;
- reports them: `/readyz` fails while a job is down or keeps failing, `/healthz` fails when a
  job's supervisor itself is gone (`background_job_up` shows each job);
- kills a job as a crash would (`kill`), waiting with a limit and failing loudly if the job
  does not end, so tests that simulate crashes never hang.

Cancellation is sacred: on Python 3.11 `asyncio.wait_for` can swallow a cancellation that
arrives just after the awaited thing finished (CPython issue 86296). Idle waits use
`wait_event` (built on `asyncio.timeout`), and ruff bans `asyncio.wait_for` in the codebase.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from fastapi import FastAPI

from services.kit.metrics import JOB_RESTARTS, JOB_UP
from services.kit.web import add_liveness_check, add_readiness_check

log = logging.getLogger(__name__)


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` pass; True if it was set.

    Unlike `asyncio.wait_for` on Python 3.11, a cancellation of the caller is never lost.
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


class Job(Protocol):
    """Background work: `run` until `stop()` is called (then finish the current unit)."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


JobFactory = Callable[[], Job]


class Periodic:
    """Calls `work` now and then every `interval` seconds until stopped.

    `work` returns how much it did (rows purged, reservations released); a round that did
    something is logged as `report` with that count. Work that has nothing to count (a
    sampling job) returns None and is never logged. A failed round is retried at the next one;
    it does not restart the job. The first failure of a run of them is logged as `failing`
    (what the failure means for the service), and the first round that succeeds again, so a
    job that runs every fraction of a second does not log every round of an outage.
    """

    def __init__(
        self,
        name: str,
        interval: float,
        work: Callable[[], Awaitable[int | None]],
        report: str = "",
        failing: str = "periodic job failed; retrying every round",
    ) -> None:
        self.name = name
        self.interval = interval
        self.work = work
        self.report = report
        self.failing = failing
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        failed = False
        while not self._stop.is_set():
            try:
                done = await self.work()
            except Exception:  # retried at the next round
                if not failed:
                    log.exception(self.failing, extra={"job": self.name})
                failed = True
            else:
                if failed:
                    log.info("periodic job succeeded again", extra={"job": self.name})
                failed = False
                if done:
                    log.info(self.report, extra={"job": self.name, "count": done})
            await wait_event(self._stop, self.interval)


class JobStuck(RuntimeError):
    """A job did not end within its limit after being cancelled."""


class State(enum.StrEnum):
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Restart delays: `initial`, doubling up to `maximum`; reset after `healthy` seconds."""

    initial: float = 0.5
    maximum: float = 30.0
    healthy: float = 30.0


@dataclass(eq=False)
class _Slot:
    name: str
    factory: JobFactory
    task: asyncio.Task[None] | None = None
    job: Job | None = None
    state: State = State.STOPPED
    failures: int = 0
    last_error: str | None = None
    running_since: float | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


class Runtime:
    """The supervisor of one service's background jobs."""

    def __init__(
        self,
        service: str,
        *,
        stop_timeout: float = 10.0,
        kill_timeout: float = 10.0,
        backoff: Backoff | None = None,
        unready_after_failures: int = 3,
        ready_after_running: float = 5.0,
    ) -> None:
        self.service = service
        self.stop_timeout = stop_timeout
        self.kill_timeout = kill_timeout
        self.backoff = backoff or Backoff()
        self.unready_after_failures = unready_after_failures
        # A job that failed often counts as recovered once it has run this long without failing
        # again: a long-lived job (a consumer, a listener) only ends when it fails, so waiting
        # for its next end would keep the service unready after its dependency came back.
        self.ready_after_running = ready_after_running
        self._slots: dict[str, _Slot] = {}

    # --- registration and lifecycle -------------------------------------------------------

    def add(self, name: str, factory: JobFactory) -> None:
        """Register a job; `start` runs it. Jobs stop in reverse order of registration."""
        if name in self._slots:
            raise ValueError(f"a job named {name!r} is already registered")
        self._slots[name] = _Slot(name, factory)
        JOB_UP.labels(self.service, name).set(0)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._slots)

    def start(self, name: str | None = None) -> None:
        """Start one job, or every registered job; one that runs already is left alone."""
        for slot in self._select(name):
            if slot.task is not None and not slot.task.done():
                continue
            slot.stopping = asyncio.Event()
            slot.failures = 0
            slot.last_error = None
            slot.state = State.RUNNING
            slot.task = asyncio.create_task(
                self._supervise(slot), name=f"{self.service}-{slot.name}"
            )

    async def stop(self, name: str | None = None) -> None:
        """Ask one job (or all, newest first) to finish; cancel it after the stop timeout."""
        for slot in reversed(list(self._select(name))):
            await self._stop(slot)

    async def kill(self, name: str) -> None:
        """End a job as a crash would: cancel it wherever it is, without asking it to finish.

        Raises `JobStuck` if it has not ended within the kill timeout.
        """
        slot = self._slots[name]
        slot.stopping.set()
        if slot.task is not None:
            await _cancel_and_reap(slot.task, self.kill_timeout)
        self._mark_stopped(slot)

    # --- reports --------------------------------------------------------------------------

    def states(self) -> dict[str, str]:
        return {slot.name: slot.state.value for slot in self._slots.values()}

    def readiness_problems(self) -> dict[str, str]:
        """Jobs that are down or keep failing, with why."""
        problems: dict[str, str] = {}
        for slot in self._slots.values():
            if slot.state is State.STOPPED:
                problems[slot.name] = "stopped"
            elif slot.failures >= self.unready_after_failures and not self._recovered(slot):
                problems[slot.name] = f"failed {slot.failures} times in a row: {slot.last_error}"
        return problems

    def _recovered(self, slot: _Slot) -> bool:
        if slot.state is not State.RUNNING or slot.running_since is None:
            return False
        return time.monotonic() - slot.running_since >= self.ready_after_running

    def liveness_problems(self) -> dict[str, str]:
        """Jobs whose supervisor ended without being asked to: the process needs a restart."""
        return {
            slot.name: "supervisor ended unexpectedly"
            for slot in self._slots.values()
            if slot.task is not None and slot.task.done() and not slot.stopping.is_set()
        }

    def attach(self, app: FastAPI) -> None:
        """Make `/readyz` and `/healthz` report the jobs; tests find it as `app.state.runtime`."""
        app.state.runtime = self

        async def jobs_ready() -> None:
            problems = self.readiness_problems()
            if problems:
                raise RuntimeError("; ".join(f"{n}: {why}" for n, why in problems.items()))

        add_readiness_check(app, "jobs", jobs_ready)
        add_liveness_check(app, "jobs", self.liveness_problems)

    # --- internals ------------------------------------------------------------------------

    def _select(self, name: str | None) -> list[_Slot]:
        return list(self._slots.values()) if name is None else [self._slots[name]]

    async def _stop(self, slot: _Slot) -> None:
        slot.stopping.set()
        if slot.job is not None:
            slot.job.stop()
        task = slot.task
        if task is not None and not task.done():
            done, _ = await asyncio.wait({task}, timeout=self.stop_timeout)
            if not done:
                log.warning("job did not stop in time; cancelling", extra={"job": slot.name})
                try:
                    await _cancel_and_reap(task, self.kill_timeout)
                except JobStuck:
                    log.error("job did not end after cancellation", extra={"job": slot.name})
        if task is not None and task.done() and not task.cancelled() and task.exception():
            log.error("job supervisor failed", extra={"job": slot.name}, exc_info=task.exception())
        self._mark_stopped(slot)

    def _mark_stopped(self, slot: _Slot) -> None:
        slot.state = State.STOPPED
        slot.job = None
        JOB_UP.labels(self.service, slot.name).set(0)

    async def _supervise(self, slot: _Slot) -> None:
        loop = asyncio.get_running_loop()
        delay = self.backoff.initial
        while not slot.stopping.is_set():
            started = loop.time()
            error: BaseException | None = None
            try:
                slot.job = slot.factory()
                slot.state = State.RUNNING
                slot.running_since = time.monotonic()
                JOB_UP.labels(self.service, slot.name).set(1)
                await slot.job.run()
            except Exception as exc:  # any failure of the job is the supervisor's to handle
                error = exc
            slot.running_since = None
            JOB_UP.labels(self.service, slot.name).set(0)
            if slot.stopping.is_set():
                return
            if loop.time() - started >= self.backoff.healthy:
                delay, slot.failures = self.backoff.initial, 0
            slot.failures += 1
            slot.last_error = repr(error) if error else "ended without being asked to"
            slot.state = State.RESTARTING
            JOB_RESTARTS.labels(self.service, slot.name).inc()
            log.error(
                "background job failed; restarting",
                extra={"job": slot.name, "restart_in_seconds": delay, "failures": slot.failures},
                exc_info=error,
            )
            await wait_event(slot.stopping, delay)
            delay = min(delay * 2, self.backoff.maximum)


async def _cancel_and_reap(task: asyncio.Task[None], limit: float) -> None:
    """Cancel `task` until it ends (a cancel can be swallowed by code we do not own, such as
    `wait_for` in a library on Python 3.11), for at most `limit` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=min(0.1, max(deadline - loop.time(), 0)))
        if not task.done() and loop.time() >= deadline:
            raise JobStuck(f"{task.get_name()} did not end within {limit} s of being cancelled")
    if not task.cancelled() and task.exception() is not None:
        log.error("job ended with an error", exc_info=task.exception())
