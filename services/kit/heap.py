"""Full garbage collections that visit what is new, not everything the process holds.

CPython's full (generation 2) collection visits every object the collector tracks, and pauses
the whole process while it does. A process that holds many long-lived objects pays for all of
them at every full collection: the gateway with 10,000 Socket.IO connections held tracks about
two million objects, and its full collections paused every connection's pushes for up to 2 s;
the orders service's paused it for 100 to 250 ms, several times a minute under load. Those
objects are alive; visiting them again finds nothing to free.

`FrozenSurvivors` freezes (`gc.freeze`) what survives each full collection: the collector then
ignores those objects, and later full collections visit only what was created since, which is
what can have become garbage. A survivor that becomes garbage later is freed at once if nothing
refers to it (reference counting is untouched), but one caught in a reference cycle, as a
closed connection's coroutines and tasks are, stays until the survivors are thawed
(`gc.unfreeze`). So the first full collection after the thaw is due visits everything, in one
pause as long as those the freezing avoided. The thaw is due when
- `thaw_seconds` passed since the last one, which bounds what any cycle can hold, or
- the connections closed since the last thaw reach a quarter of those open (at least
  `MIN_CLOSED_TO_THAW`), which bounds what closed connections hold to about a quarter of what
  the open ones take (`watch_connections`; the gateway's Socket.IO connections).

Both happen in the collector's own callbacks: the thaw as a full collection starts, the freeze
as it ends (CPython runs the callbacks around the collection, 3.11 to 3.13). Every service
freezes (`GC_THAW_SECONDS`, 3600 s; 0 never freezes). Metrics: `python_gc_frozen_objects` and
`python_gc_thaws_total`; the pauses are in `python_gc_pause_seconds{generation="2"}`.

The frozen objects are counted as they are frozen, never at a scrape: CPython counts them
(`gc.get_freeze_count`) by walking all of them, which took 12 ms with the 120,000 a service holds
at rest and paused the gateway with 10,000 connections held for far longer at every scrape. What
a freeze adds is what the full collection just visited, so counting it then costs a fraction of
that collection's pause.
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
    "Objects frozen since the last thaw, counted as they were frozen: the collector ignores "
    "them until they are thawed; some may have been freed since (services/kit/heap.py).",
)
THAWS = Counter(
    "python_gc_thaws_total",
    "Full garbage collections that thawed the frozen survivors and visited everything.",
)


def _none() -> int:
    return 0


class FrozenSurvivors:
    """Freezes the survivors of each full collection; thaws them when that is due."""

    def __init__(self, thaw_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.thaw_seconds = thaw_seconds
        self.clock = clock
        self._closed: Callable[[], int] = _none
        self._open_now: Callable[[], int] = _none
        self._thawed_at = clock()
        self._closed_at_thaw = 0
        self._thawing = False

    def watch_connections(self, closed: Callable[[], int], open_now: Callable[[], int]) -> None:
        """Thaw also once enough connections closed: `closed()` counts those closed so far (it
        only grows), `open_now()` those open."""
        self._closed, self._open_now = closed, open_now
        self._closed_at_thaw = closed()

    def install(self) -> None:
        """Freeze the survivors of every full collection from now on."""
        if self._on_collection not in gc.callbacks:
            gc.callbacks.append(self._on_collection)

    def uninstall(self) -> None:
        """Stop freezing, and give what is frozen back to the collector."""
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)
        gc.unfreeze()
        FROZEN.set(0)

    def due(self) -> bool:
        """Whether the next full collection should thaw the survivors and visit everything."""
        if self.clock() - self._thawed_at >= self.thaw_seconds:
            return True
        closed = self._closed() - self._closed_at_thaw
        return closed >= max(MIN_CLOSED_TO_THAW, self._open_now() // 4)

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._thawing = self.due()
            if self._thawing:
                gc.unfreeze()
            return
        # What the collector still tracks, all of it about to be frozen: a full collection
        # leaves only its survivors and what its callbacks made.
        freezing = len(gc.get_objects())
        gc.freeze()
        if self._thawing:
            self._thawing = False
            THAWS.inc()
            self._thawed_at = self.clock()
            self._closed_at_thaw = self._closed()
            FROZEN.set(freezing)
        else:
            FROZEN.inc(freezing)
