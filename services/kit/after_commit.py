"""After-commit effects: what a committed change sets off, run without holding up its caller.

A change commits first; then its effects (a live Socket.IO push, a cache invalidation, a
metric) are handed to `AfterCommit.submit`, which only queues them and returns at once. One
task, registered with the service's runtime as a job, runs them in the order they were
submitted (so one order's pushes arrive in commit order), each within a time limit: the
`Runner` from `job()`, which the runtime restarts like any job, the queue surviving it. A Kafka
consumer's in-order loop therefore never waits on Redis: when Redis is slow or gone the queue
(and, for live pushes, the emitter's own queue: kit/live.py) fills up to its capacity, and what
does not fit is dropped and counted
(`after_commit_effects_total{outcome="dropped"}`). Every effect here is recoverable by design:
clients catch up with `order.sync`, cache pages expire.

An effect that only brings something up to date, whatever the change was (a cache made stale),
is submitted as `Coalesced(key, effect)`: while one with its key waits in the queue, another is
not queued (`outcome="coalesced"`), since the waiting one starts after the change that asked
again has committed. One already running is no such guarantee, so its key is free again as
soon as it starts. A consumer that applies a group of events asks once for the group.

An effect that does for many items at once what it would do for each (one read for many
pushes) is submitted as `Batched(run_many, item)`: when the first of them is due, every other
queued with the same `run_many` is taken out of the queue with it, and `run_many(items)` runs
once, with the items in the order they were submitted; the other effects keep theirs. Each item
counts as an effect in the outcomes.

With tracing on, `submit` keeps the trace context of the change with each effect, and the
effect runs in a span of that trace (`after-commit <effect>`): the live push of a consumed
event appears in the order's trace, after the consumer's span (kit/tracing.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from opentelemetry.context import Context

from services.kit import tracing
from services.kit.metrics import AFTER_COMMIT_EFFECTS, labelled

log = logging.getLogger(__name__)
Effect = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Coalesced:
    """An effect queued once while an equal one (by `key`) waits to run."""

    key: Hashable
    func: Effect = field(compare=False)

    def __call__(self) -> Awaitable[object]:
        return self.func()


@dataclass(frozen=True, slots=True)
class Batched:
    """One item of an effect that runs for all the items queued with it: `run_many(items)`."""

    run_many: Callable[[list[Any]], Awaitable[object]]
    item: Any

    def __call__(self) -> Awaitable[object]:
        return self.run_many([self.item])


class AfterCommit:
    """A bounded queue of after-commit effects and the job that runs them."""

    def __init__(self, service: str, *, capacity: int = 10_000, timeout: float = 2.0) -> None:
        self.service = service
        self.capacity = capacity
        self.timeout = timeout
        self._pending: deque[tuple[Effect, Context | None]] = deque()
        self._waiting: set[Coalesced] = set()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        for outcome in ("done", "failed", "timed_out", "dropped", "coalesced"):
            AFTER_COMMIT_EFFECTS.labels(service, outcome)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def submit(self, effects: Iterable[Effect]) -> None:
        """Queue `effects` to run after the change that produced them; never waits."""
        context = tracing.capture()
        for effect in effects:
            if isinstance(effect, Coalesced):
                if effect in self._waiting:
                    labelled(AFTER_COMMIT_EFFECTS, self.service, "coalesced").inc()
                    continue
                self._waiting.add(effect)
            if len(self._pending) >= self.capacity:
                AFTER_COMMIT_EFFECTS.labels(self.service, "dropped").inc()
                if isinstance(effect, Coalesced):
                    self._waiting.discard(effect)
                log.warning(
                    "after-commit queue full; effect dropped", extra={"effect": _name(effect)}
                )
                continue
            self._pending.append((effect, context))
            self._idle.clear()
        self._wake.set()

    async def drained(self) -> None:
        """Wait until every effect submitted so far has run (for tests and shutdown checks)."""
        await self._idle.wait()

    def job(self) -> Runner:
        """The runtime job that runs the queued effects (a new one for each (re)start)."""
        return Runner(self)

    async def _run_one(self, effect: Effect, context: Context | None) -> None:
        count = 1
        if isinstance(effect, Coalesced):
            self._waiting.discard(effect)  # running: a change committed from now on asks again
        elif isinstance(effect, Batched):
            items = self._gather(effect)
            effect, count = partial(effect.run_many, items), len(items)
        if context is None:
            await self._run_timed(effect, count)
            return
        with tracing.span(self.service, f"after-commit {_short_name(effect)}", parent=context):
            await self._run_timed(effect, count)

    def _gather(self, first: Batched) -> list[Any]:
        """The items of `first` and of every queued effect batched with it, taken out of the
        queue."""
        items = [first.item]
        kept: deque[tuple[Effect, Context | None]] = deque()
        for queued in self._pending:
            effect = queued[0]
            if isinstance(effect, Batched) and effect.run_many == first.run_many:
                items.append(effect.item)
            else:
                kept.append(queued)
        self._pending = kept
        return items

    async def _run_timed(self, effect: Effect, count: int = 1) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await effect()
        except TimeoutError:
            outcome = "timed_out"
        except Exception as exc:  # the change is committed; an effect may fail on its own
            outcome = "failed"
            log.warning(
                "after-commit effect failed", extra={"effect": _name(effect), "error": repr(exc)}
            )
        else:
            outcome = "done"
        if outcome == "timed_out":
            log.warning("after-commit effect timed out", extra={"effect": _name(effect)})
        labelled(AFTER_COMMIT_EFFECTS, self.service, outcome).inc(count)


class Runner:
    """Runs the effects queued in an `AfterCommit`, in order, until stopped (then finishes
    what is queued)."""

    def __init__(self, queue: AfterCommit) -> None:
        self.queue = queue
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True
        self.queue._wake.set()

    async def run(self) -> None:
        queue = self.queue
        while True:
            while queue._pending:
                await queue._run_one(*queue._pending.popleft())
            queue._idle.set()
            if self._stopping:
                return
            queue._wake.clear()
            await queue._wake.wait()


def _short_name(effect: Effect) -> str:
    """A span's name for `effect`: its function's name, a partial's function's name."""
    function = getattr(effect, "func", effect)
    return str(getattr(function, "__name__", type(function).__name__))


def _name(effect: Effect) -> str:
    """A log's name for `effect`: its function's qualified name (a partial's, a batch's)."""
    function = getattr(effect, "func", effect)
    return getattr(function, "__qualname__", None) or repr(effect)
