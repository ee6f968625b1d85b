"""A batch that waits a little for more items, only while the load is high.

The consumers an order waits on take what has arrived and go: a Kafka consumer is answered as
soon as an event arrives (kafka.fetch_config(0)) and orders' creates are placed as soon as one
comes (groups.py). Under load that makes batches of one or two, and most of what a batch costs
is the same for one item as for ten: a fetch and its thread hop, a statement, a transaction, its
commit and WAL flush, the outbox rows' NOTIFY and the relay's pass that publishes them.

`BusyGather(wait_ms)` decides how long a batch waits for more once its first item is there:
`wait_ms` while the batches have been taking at least `from_rate` items a second (an
exponentially weighted count over about `horizon` seconds, kept by `took`), nothing below that
rate, so a quiet pipeline keeps its latency. An item waits at most `wait_ms` more at each
place that gathers it. 0 never waits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

BUSY_FROM_RATE = 50.0
"""Items a second (over about the last second) from which a batch waits for more."""


class BusyGather:
    """How long a batch waits for more once its first item is there (the module docstring)."""

    def __init__(
        self,
        wait_ms: int,
        from_rate: float = BUSY_FROM_RATE,
        *,
        horizon: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if wait_ms < 0 or from_rate < 0 or horizon <= 0:
            raise ValueError(
                "a busy gather needs a wait and a rate of 0 or more, a horizon above 0"
            )
        self.wait = wait_ms / 1000
        self.from_rate = from_rate
        self.horizon = horizon
        self._clock = clock
        self._count = 0.0
        self._at = clock()

    def per_second(self) -> float:
        """Items taken a second, over about the last `horizon` seconds."""
        return self._decayed(self._clock()) / self.horizon

    def wait_seconds(self) -> float:
        """How long the batch under way waits for more: 0 below `from_rate`."""
        if self.wait == 0 or self.per_second() < self.from_rate:
            return 0.0
        return self.wait

    def took(self, items: int) -> None:
        """Count the items a batch took."""
        now = self._clock()
        self._count = self._decayed(now) + items
        self._at = now

    def _decayed(self, now: float) -> float:
        return self._count * math.exp((self._at - now) / self.horizon)
