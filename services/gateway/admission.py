"""Admission control: a bound on the work the gateway hands each upstream at once.

Without it, overload turned into half-minute latencies: every create the orders service could
not take waited in its event loop and then for a database connection (its pool waits up to 30 s
for one), so clients timed out while the service kept working on answers nobody read. Now each
upstream has a gate: at most UPSTREAM_MAX_IN_FLIGHT requests forwarded and unanswered; a
request beyond that waits in a short queue (UPSTREAM_QUEUE_LENGTH places, first come first
served) for at most UPSTREAM_QUEUE_SECONDS, and is otherwise refused at once with 503 and
`Retry-After` (`overloaded`), which a client can retry later, knowing nothing was done.

Only proxied requests pass a gate. Socket.IO connections and their pushes, `order.sync`, the
probes and `/metrics` never do, and a product list answered from memory (products.py) takes no
slot; so overload never drops a live connection or takes the gateway out of rotation.

With one orders process and its pool of DB_POOL_MAX connections (10), the default of 32 in
flight keeps the orders service's own queue (its event loop, then its pool) short: a request
the gateway admits waits there a fraction of a second at the service's sustainable rate,
instead of the pool's 30 s limit deciding.

Metrics: `gateway_admission_shed_total{upstream}`, `gateway_upstream_in_flight{upstream}` and
`gateway_admission_queued{upstream}`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from services.gateway.errors import Overloaded
from services.gateway.metrics import ADMISSION_QUEUED, ADMISSION_SHED, UPSTREAM_IN_FLIGHT
from services.gateway.routes import Upstream


class Gate:
    """At most `limit` holders at once, then `queue_length` waiters for `queue_seconds`."""

    def __init__(
        self,
        upstream: Upstream,
        limit: int,
        queue_length: int,
        queue_seconds: float,
        retry_after: int,
    ) -> None:
        self.upstream = upstream
        self.limit = limit
        self.queue_length = queue_length
        self.queue_seconds = queue_seconds
        self.retry_after = retry_after
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._in_flight_gauge = UPSTREAM_IN_FLIGHT.labels(upstream)
        self._queued_gauge = ADMISSION_QUEUED.labels(upstream)
        self._shed = ADMISSION_SHED.labels(upstream)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the upstream's slots for the block; `Overloaded` if none comes."""
        await self._acquire()
        try:
            yield
        finally:
            self._release()

    async def _acquire(self) -> None:
        if self.in_flight < self.limit and not self._waiters:
            self._taken()
            return
        if len(self._waiters) >= self.queue_length:
            self._refuse()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._queued_gauge.set(len(self._waiters))
        try:
            async with asyncio.timeout(self.queue_seconds):
                await waiter
        except TimeoutError:
            # The timeout cancels the wait, and with it the waiter, unless a slot was handed
            # over just before: then the slot is ours.
            if waiter.cancelled():
                self._leave(waiter)
                self._refuse()
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a slot, but the caller is gone
            else:
                self._leave(waiter)
            raise

    def _taken(self) -> None:
        self.in_flight += 1
        self._in_flight_gauge.set(self.in_flight)

    def _leave(self, waiter: asyncio.Future[None]) -> None:
        waiter.cancel()
        if waiter in self._waiters:  # a release may have skipped it already
            self._waiters.remove(waiter)
        self._queued_gauge.set(len(self._waiters))

    def _refuse(self) -> None:
        self._shed.inc()
        raise Overloaded(
            f"The {self.upstream} service is at capacity; retry in {self.retry_after} s.",
            retry_after=self.retry_after,
        )

    def _release(self) -> None:
        """Hand the slot to the first waiter still waiting, or give it back."""
        while self._waiters:
            waiter = self._waiters.popleft()
            self._queued_gauge.set(len(self._waiters))
            if not waiter.done():
                waiter.set_result(None)
                return
        self.in_flight -= 1
        self._in_flight_gauge.set(self.in_flight)


class Admission:
    """One gate per upstream, all with the same limits."""

    def __init__(
        self,
        upstreams: Iterable[Upstream],
        *,
        limit: int,
        queue_length: int,
        queue_seconds: float,
        retry_after: int,
    ) -> None:
        self._gates = {
            upstream: Gate(upstream, limit, queue_length, queue_seconds, retry_after)
            for upstream in upstreams
        }

    def gate(self, upstream: Upstream) -> Gate:
        return self._gates[upstream]
