"""Admission by the pipeline's backlog: no new order while too many wait for inventory.

The gateway's admission control (services/gateway/admission.py) bounds the requests in flight
to this service, and a create's own transaction takes milliseconds, so under overload the
gateway lets through as many creates as this service can write, several times what the rest
of the pipeline (the relays, inventory, the consumers) can settle. The difference waits as
orders in CREATED, and every order accepted behind them waits for all of them: offered twice
the sustainable rate for a minute, accepted orders took seconds to confirm and kept doing so
long after the burst.

So a create is refused at once with 503, `Retry-After` and the problem type
`pipeline-backlogged` while more than MAX_UNSETTLED_ORDERS orders are CREATED (across every
replica: the count is the database's). What was accepted then settles within about the backlog
divided by the pipeline's rate, and a burst's backlog is gone that long after it. The refusal
reads nothing, not even a replayed `Idempotency-Key`'s record: a replay is refused too, and
answered with its order when the client retries once creates are taken again. Reading the key
first had every refusal wait for a database connection behind the creates already taken, so
under overload orders' refusals took as long as an accepted create (docs/benchmarks-analysis.md).
(The gateway repeats this refusal for UPSTREAM_REFUSAL_HOLD_SECONDS without forwarding,
services/gateway/admission.py, and refuses the creates waiting in its queue with it.)

The `unsettled-orders` job counts them every BACKLOG_CHECK_SECONDS with the partial index of
CREATED orders (migration 0003), up to one past the limit; each create this replica accepted
since a count was asked, or had not committed when it was asked, adds one to it, so a burst
cannot pass the limit by a whole interval's creates. The orders settled meanwhile are not
subtracted until the next count, so a replica admits at most MAX_UNSETTLED_ORDERS creates per
interval however fast the pipeline settles them: the interval is short (0.05 s, a ceiling of
1,200 creates a second at the default limit; the count reads a partial index, 20 times a
second). At 0.25 s that ceiling, less the orders waiting, held a two-core machine to about 200
orders a second where its pipeline settled 250 (docs/benchmarks-analysis.md).

Before the first count, and with a count older than ten intervals and 5 s (the job is down, or
the database is), creates are admitted as they would be without this check: the database's own
failure answers them.
MAX_UNSETTLED_ORDERS=0 turns the check off. Metrics: `orders_unsettled` (the last count) and
`orders_creates_refused_total{reason="backlog"}`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from services.kit.db import Pool, autocommit
from services.kit.errors import RateLimited
from services.orders import metrics
from services.orders import repository as repo

TRUSTED_INTERVALS = 10
TRUSTED_SECONDS = 5.0
NOT_COUNTED = "unsettled orders not counted; creates are admitted once the last count is too old"
"""What a failed count means, logged once per outage by the job that counts."""


class PipelineBacklogged(RateLimited):
    """Too many orders wait for inventory's answer; nothing was created. Retry later."""

    status = 503
    code = "pipeline-backlogged"


class Backlog:
    """The last count of unsettled orders, plus this replica's creates since it."""

    def __init__(
        self,
        pool: Pool,
        limit: int,
        check_seconds: float,
        retry_after: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.limit = limit
        self.check_seconds = check_seconds
        self.retry_after = retry_after
        self.clock = clock
        self.unsettled = 0
        self._admitted = 0
        self._in_flight = 0
        self._counted_at: float | None = None

    async def count(self) -> None:
        """One count (the `unsettled-orders` job's round). One that fails (the database is
        down) raises and leaves the last count to age until it is no longer trusted."""
        asked, admitted, in_flight = self.clock(), self._admitted, self._in_flight
        async with autocommit(self.pool) as conn:  # one read: no transaction around it
            found = await repo.count_unsettled(conn, up_to=self.limit + 1)
        self.counted(found, asked, admitted=admitted, in_flight=in_flight)

    def counted(self, unsettled: int, asked: float, *, admitted: int, in_flight: int) -> None:
        """A count asked at `asked`, when this replica had admitted `admitted` creates and
        `in_flight` of them were not committed yet. Those and the ones admitted since are added:
        the count may not have seen them (if it did, they are counted twice until the next
        count, which errs on the side of refusing)."""
        self.unsettled = unsettled + in_flight + (self._admitted - admitted)
        self._counted_at = asked
        metrics.UNSETTLED.set(unsettled)

    @property
    def trusted(self) -> bool:
        """Whether there is a count young enough to refuse creates by."""
        if self._counted_at is None:
            return False
        window = max(TRUSTED_INTERVALS * self.check_seconds, TRUSTED_SECONDS)
        return self.clock() - self._counted_at <= window

    @contextmanager
    def admission(self) -> Iterator[None]:
        """Admit one create for the block (or raise `PipelineBacklogged`); the block writes it."""
        self.admit()
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1

    def not_written(self) -> None:
        """An admitted create that wrote no order (its key was taken): it is not counted."""
        if self.limit:
            self._admitted -= 1
            self.unsettled = max(self.unsettled - 1, 0)

    def admit(self) -> None:
        """Count one more create, or refuse it while the backlog is over the limit."""
        if not self.limit:
            return
        if self.trusted and self.unsettled >= self.limit:
            metrics.CREATES_REFUSED.labels("backlog").inc()
            raise PipelineBacklogged(
                f"{self.unsettled} or more orders are waiting for inventory's answer; "
                f"retry in {self.retry_after} s.",
                retry_after=self.retry_after,
            )
        self._admitted += 1
        self.unsettled += 1
