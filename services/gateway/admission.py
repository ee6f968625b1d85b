"""Admission control: a bound on the work the gateway hands each upstream at once.

Without it, overload turned into half-minute latencies: every create the orders service could
not take waited in its event loop and then for a database connection (its pool waits up to 30 s
for one), so clients timed out while the service kept working on answers nobody read. Now each
upstream has a gate: at most UPSTREAM_MAX_IN_FLIGHT requests forwarded and unanswered; a
request beyond that waits in a short queue (UPSTREAM_QUEUE_LENGTH places, first come first
served) for at most UPSTREAM_QUEUE_SECONDS, and is otherwise refused at once with 503 and
`Retry-After` (`overloaded`), which a client can retry later, knowing nothing was done.

The queue is there for bursts: a moment's more requests than slots wait instead of being
refused. Under overload every slot stays held, and every request in the queue waited most of
UPSTREAM_QUEUE_SECONDS, to be refused at the end or forwarded late. So, as CoDel does for a
router's queue and as large RPC stacks do for their servers ("Fail at Scale", ACM Queue 2015),
once every slot has been held for UPSTREAM_QUEUE_STANDING_SECONDS (0.1) without one given
back with nobody waiting for it, the queue is a standing one, and a request that joins it
waits only UPSTREAM_QUEUE_STANDING_WAIT_SECONDS (0.005): under overload the refusals come
within milliseconds and what is forwarded did not wait long either, while a burst on an
upstream that keeps up still waits the whole time.

Only proxied requests pass a gate. Socket.IO connections and their pushes, `order.sync`, the
probes and `/metrics` never do, and a product list answered from memory (products.py) takes no
slot; so overload never drops a live connection or takes the gateway out of rotation.

With one orders process and its pool of DB_POOL_MAX connections (10), the default of 16 in
flight keeps the orders service's own queue (its event loop, then its pool) short: a request
the gateway admits waits there a fraction of a second at the service's sustainable rate,
instead of the pool's 30 s limit deciding. More in flight only wait inside orders, where they
take its event loop from the consumer and the relay that settle orders: with 32, two cores
took 10% fewer creates under overload and settled 2 to 3% fewer orders a second at 400 offered
(docs/benchmarks-analysis.md).

An upstream can refuse work of its own: orders answers creates with 503, `Retry-After` and
`pipeline-backlogged` while its pipeline is behind (services/orders/backlog.py), and under
overload most creates get that answer. Each cost the gateway a forwarded request and orders a
whole request (parsing, validation, authentication), on cores the pipeline was short of. So
`Refusals` remembers such an answer, a 503 with `Retry-After`, for its method and route, for
UPSTREAM_REFUSAL_HOLD_SECONDS (0.05 s, orders' interval between two counts of its backlog);
meanwhile the gateway refuses that method and route itself, with 503 `overloaded` and the
upstream's `Retry-After`, and once the time is up the next request goes through and finds out
again. The hold stays shorter than the time the pipeline takes to settle orders' backlog limit:
a hold of 0.25 s refused every create for longer than a two-core machine took to settle the 60
orders waiting, so its pipeline ran dry between holds and settled about 145 orders a second
where it could settle 250 (docs/benchmarks-analysis.md). A 429 is never remembered: it refuses
one client, not the route. Nothing was forwarded, so a retry is safe, a replayed
Idempotency-Key included: it is answered once the upstream takes requests again. 0 turns this
off.

When a hold begins, the requests of its method and route waiting in the gate's queue get its
answer at once, and one handed a slot during a hold gets it before it is forwarded. Before,
such a create was forwarded once a slot came free, only to be refused by orders behind the
creates it had taken: under overload a third of the refusals were orders' own, with a p50 of
75 ms against 1 ms for the gateway's (docs/benchmarks-analysis.md).

Both refusals a request can get at once, a held one and a full gate's (every slot held and the
queue full), are given by `Admission.slot` on the proxy's front route, ahead of the app's
middleware (endpoints.py): under overload they are most of the gateway's requests.

Metrics: `gateway_admission_shed_total{upstream}`, `gateway_upstream_in_flight{upstream}`,
`gateway_admission_queued{upstream}` and `gateway_refusals_repeated_total{upstream}`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable, Iterable
from contextlib import asynccontextmanager

from services.gateway.errors import Overloaded
from services.gateway.headers import RawHeaders
from services.gateway.metrics import (
    ADMISSION_QUEUED,
    ADMISSION_SHED,
    REFUSALS_REPEATED,
    UPSTREAM_IN_FLIGHT,
)
from services.gateway.routes import Route, Upstream


class Gate:
    """At most `limit` holders at once, then `queue_length` waiters for `queue_seconds`, or for
    `standing_wait_seconds` once every slot has been held for `standing_seconds` (None:
    never)."""

    def __init__(
        self,
        upstream: Upstream,
        limit: int,
        queue_length: int,
        queue_seconds: float,
        retry_after: int,
        standing_seconds: float | None = None,
        standing_wait_seconds: float = 0.0,
    ) -> None:
        self.upstream = upstream
        self.limit = limit
        self.queue_length = queue_length
        self.queue_seconds = queue_seconds
        self.retry_after = retry_after
        self.standing_seconds = standing_seconds
        self.standing_wait_seconds = standing_wait_seconds
        self.in_flight = 0
        self._waiters: deque[tuple[Hashable, asyncio.Future[None]]] = deque()
        self._full_since: float | None = None
        """Since when every slot has been held: set by the first request that had to queue,
        cleared when a slot is given back with nobody waiting for it."""
        self._in_flight_gauge = UPSTREAM_IN_FLIGHT.labels(upstream)
        self._queued_gauge = ADMISSION_QUEUED.labels(upstream)
        self._shed = ADMISSION_SHED.labels(upstream)

    def shed(self) -> Overloaded:
        """The refusal of a request the full gate does not take, counted."""
        self._shed.inc()
        return Overloaded(
            f"The {self.upstream} service is at capacity; retry in {self.retry_after} s.",
            retry_after=self.retry_after,
        )

    @asynccontextmanager
    async def slot(self, kind: Hashable = None) -> AsyncIterator[None]:
        """Hold one of the upstream's slots for the block; `Overloaded` if none comes. While it
        waits in the queue, `turn_away` can refuse the waiters of its `kind`."""
        await self._acquire(kind)
        try:
            yield
        finally:
            self._release()

    def turn_away(self, kind: Hashable, refusal: Callable[[], Exception]) -> None:
        """Refuse every waiter of `kind` in the queue with `refusal()`."""
        turned = [entry for entry in self._waiters if entry[0] == kind and not entry[1].done()]
        for entry in turned:
            self._waiters.remove(entry)
            entry[1].set_exception(refusal())
        self._queue_changed()

    async def _acquire(self, kind: Hashable) -> None:
        if self.in_flight < self.limit and not self._waiters:
            self._taken()
            return
        if len(self._waiters) >= self.queue_length:
            self._refuse()
        if self._full_since is None:
            self._full_since = time.monotonic()
        wait = self._wait_seconds()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (kind, waiter)
        self._waiters.append(entry)
        self._queue_changed()
        try:
            async with asyncio.timeout(wait):
                await waiter
        except TimeoutError:
            # The timeout cancels the wait, and with it the waiter, unless a slot was handed
            # over just before: then the slot is ours.
            if waiter.cancelled():
                self._leave(entry)
                self._refuse()
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release()  # handed a slot, but the caller is gone
            else:
                self._leave(entry)  # turned away, or gone while waiting
            raise

    def _wait_seconds(self) -> float:
        """How long a request joining the queue now may wait in it."""
        since = self._full_since
        standing = self.standing_seconds
        if since is not None and standing is not None and time.monotonic() - since >= standing:
            return min(self.standing_wait_seconds, self.queue_seconds)
        return self.queue_seconds

    def _queue_changed(self) -> None:
        self._queued_gauge.set(len(self._waiters))

    def _taken(self) -> None:
        self.in_flight += 1
        self._in_flight_gauge.set(self.in_flight)

    def _leave(self, entry: tuple[Hashable, asyncio.Future[None]]) -> None:
        entry[1].cancel()
        if entry in self._waiters:  # a release or `turn_away` may have taken it already
            self._waiters.remove(entry)
        self._queue_changed()

    def _refuse(self) -> None:
        raise self.shed()

    def _release(self) -> None:
        """Hand the slot to the first waiter still waiting, or give it back."""
        while self._waiters:
            _, waiter = self._waiters.popleft()
            self._queue_changed()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.in_flight -= 1
        self._in_flight_gauge.set(self.in_flight)
        self._full_since = None


class Admission:
    """One gate per upstream, all with the same limits, and the upstreams' recent refusals."""

    def __init__(
        self,
        upstreams: Iterable[Upstream],
        *,
        limit: int,
        queue_length: int,
        queue_seconds: float,
        retry_after: int,
        standing_seconds: float | None = None,
        standing_wait_seconds: float = 0.0,
        refusal_hold_seconds: float = 0.0,
    ) -> None:
        self._gates = {
            upstream: Gate(
                upstream,
                limit,
                queue_length,
                queue_seconds,
                retry_after,
                standing_seconds=standing_seconds,
                standing_wait_seconds=standing_wait_seconds,
            )
            for upstream in upstreams
        }
        self.refusals = Refusals(refusal_hold_seconds)

    def gate(self, upstream: Upstream) -> Gate:
        return self._gates[upstream]

    @asynccontextmanager
    async def slot(self, method: str, route: Route) -> AsyncIterator[None]:
        """Hold a slot of the route's upstream for the block, unless the upstream's refusal of
        `method` on `route` is held (`Overloaded`), when the request comes or after its wait."""
        self.refusals.check(method, route)
        async with self._gates[route.upstream].slot((method, route.pattern)):
            self.refusals.check(method, route)  # a hold that began while it waited
            yield

    def answered(self, method: str, route: Route, status: int, headers: RawHeaders) -> None:
        """Note the upstream's answer to `method` on `route`. A refusal it holds also refuses
        the requests of that method and route waiting in the queue, at once."""
        if not self.refusals.answered(method, route, status, headers):
            return

        def held() -> Exception:
            refused = self.refusals.refusal(method, route)
            assert refused is not None, "refused within the hold just noted"
            return refused

        self._gates[route.upstream].turn_away((method, route.pattern), held)


class Refusals:
    """The routes whose upstream refused a request with 503 and `Retry-After` less than
    `hold_seconds` ago, by method: the gateway refuses them itself meanwhile."""

    def __init__(self, hold_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.hold_seconds = hold_seconds
        self.clock = clock
        self._held: dict[tuple[str, str], tuple[float, int]] = {}

    def held(self, method: str, route: Route) -> int | None:
        """The upstream's Retry-After while it refused `method` on `route` moments ago."""
        key = (method, route.pattern)
        held = self._held.get(key)
        if held is None:
            return None
        until, retry_after = held
        if self.clock() >= until:
            del self._held[key]
            return None
        return retry_after

    def refusal(self, method: str, route: Route) -> Overloaded | None:
        """The refusal to give, counted, while the route's upstream refused `method` on it
        moments ago; None when the request may go on."""
        retry_after = self.held(method, route)
        if retry_after is None:
            return None
        REFUSALS_REPEATED.labels(route.upstream).inc()
        return Overloaded(
            f"The {route.upstream} service is refusing this request for now; "
            f"retry in {retry_after} s.",
            retry_after=retry_after,
        )

    def check(self, method: str, route: Route) -> None:
        """Raise `refusal` when there is one."""
        refused = self.refusal(method, route)
        if refused is not None:
            raise refused

    def answered(self, method: str, route: Route, status: int, headers: RawHeaders) -> bool:
        """Note the upstream's answer to `method` on `route`: remember a refusal (True)."""
        if status != 503 or not self.hold_seconds:
            return False
        retry_after = _retry_after(headers)
        if retry_after is None:
            return False
        self._held[(method, route.pattern)] = (self.clock() + self.hold_seconds, retry_after)
        return True


def _retry_after(headers: RawHeaders) -> int | None:
    """Retry-After in seconds, when the header is there as a number of seconds."""
    for name, value in headers:
        if name.lower() == b"retry-after":
            return int(value) if value.isdigit() else None
    return None
