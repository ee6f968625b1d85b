"""Full garbage collections that visit what is new, not everything the process holds.

CPython's full (generation 2) collection visits every object the collector tracks, and pauses
the whole process while it does. A process that holds many long-lived objects pays for all of
them at every full collection: the gateway with 10,000 Socket.IO connections held tracks about
two million objects, and its full collections paused every connection's pushes for up to 2 s.
Those objects are alive; visiting them again finds nothing to free.

`FrozenSurvivors` freezes (`gc.freeze`) what survives each full collection: the collector then
ignores those objects, and later full collections visit only what was created since, which is
what can have become garbage. A survivor that becomes garbage later is freed at once if nothing
refers to it (reference counting is untouched), but one caught in a reference cycle, as a
closed connection's coroutines and tasks are, stays until the survivors are thawed
(`gc.unfreeze`) and collected with everything else. So `maybe_thaw`, run every second, thaws
them and collects in one full pause as long as those the freezing avoided, when either
- `thaw_seconds` passed since the last thaw, which bounds what any cycle can hold, or
- the connections closed since the last thaw reach a quarter of those open (at least
  `MIN_CLOSED_TO_THAW`), which bounds what closed connections hold to about a quarter of what
  the open ones take.

Metrics: `python_gc_frozen_objects` (what the collector ignores now) and
`python_gc_thaws_total`; the thaws' own pauses are in `python_gc_pause_seconds{generation="2"}`.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge

MIN_CLOSED_TO_THAW = 1000

FROZEN = Gauge(
    "python_gc_frozen_objects",
    "Objects that survived a full garbage collection and are frozen: the collector ignores "
    "them until they are thawed (services/kit/heap.py).",
)
THAWS = Counter(
    "python_gc_thaws_total",
    "Times the frozen survivors were thawed and collected with everything else.",
)


class FrozenSurvivors:
    """Freezes the survivors of each full collection; thaws them now and then.

    `closed()` counts the connections closed so far (it only grows) and `open_now()` those
    open; both default to none, leaving the time limit alone to decide.
    """

    def __init__(
        self,
        thaw_seconds: float,
        *,
        closed: Callable[[], int] = lambda: 0,
        open_now: Callable[[], int] = lambda: 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.thaw_seconds = thaw_seconds
        self.closed = closed
        self.open_now = open_now
        self.clock = clock
        self._thawed_at = clock()
        self._closed_at_thaw = closed()

    def install(self) -> None:
        """Freeze the survivors of every full collection from now on."""
        if self._after_collection not in gc.callbacks:
            gc.callbacks.append(self._after_collection)

    def uninstall(self) -> None:
        """Stop freezing, and give what is frozen back to the collector."""
        if self._after_collection in gc.callbacks:
            gc.callbacks.remove(self._after_collection)
        gc.unfreeze()
        FROZEN.set(0)

    def due(self) -> bool:
        """Whether the survivors should be thawed now."""
        if self.clock() - self._thawed_at >= self.thaw_seconds:
            return True
        closed = self.closed() - self._closed_at_thaw
        return closed >= max(MIN_CLOSED_TO_THAW, self.open_now() // 4)

    def thaw(self) -> int:
        """Thaw the survivors and collect everything; the objects found unreachable."""
        gc.unfreeze()
        collected = gc.collect()  # its survivors are frozen again as it ends
        THAWS.inc()
        self._thawed_at = self.clock()
        self._closed_at_thaw = self.closed()
        return collected

    async def maybe_thaw(self) -> int | None:
        """`thaw` when `due`: the work of a periodic job."""
        return self.thaw() if self.due() else None

    def _after_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info["generation"] == 2:
            gc.freeze()
            FROZEN.set(gc.get_freeze_count())
