"""The loop every outbox relay shares: lead, publish in batches, wake on NOTIFY, poll as a
fallback.

A relay is a job of the kit runtime. `NotifiedRelay.run` calls `publish_batch` again at once
while batches come back full, and otherwise idles until a `NOTIFY <channel>_<schema>` arrives
(a transaction that wrote rows commits) or `poll_interval` passes. The NOTIFY comes from a
trigger on the relayed table, `notify_relay('<channel>')` (kit migration 0003), so a writer
sends nothing for it: one channel per schema, so each relay wakes only for its own rows. A
failed round (a broker or database outage) is logged, counted by `failed`, and retried a second
later: the rows wait in their table, nothing is lost. Subclasses say how to publish a batch
(`publish_batch`) and what to do before the first one (`prepare`).

**One relay leads.** Of the replicas' relays for a channel and schema, one publishes: the one
whose own session (`kit.db.connect`, outside the pool) holds the advisory lock
`hashtext('<channel>:' || schema)` (`leading_session`). The others wake as the leader does,
try the lock, and publish nothing until the leader's session ends (its process stops, or the
server ends it), when one of them takes over. So a leader's round needs neither a transaction
nor row locks: it reads the next rows and publishes them, and what the broker acknowledged is
marked by the next round's statement, which also reads the rows after them (`take_unmarked`,
`leave_unmarked`), or by `mark` when the relay stops. A round that fails before its rows are
marked, or a relay that dies, leaves them to be published again, so a message may arrive twice
(its consumers dedupe by id), never not at all. For the same reason the session commits its
marks without waiting for their WAL flush (`synchronous_commit = off`, this session only; every
write a customer or a consumer makes still waits for its flush): a crash of the server can lose
only marks that nothing committed after them, whose rows are then published again. Before each
round the relay looks at its session without a round trip (`kit.db.session_ended`); one the
server ended is replaced by a new session that tries the lock again. The relay's session ends
with it (`close`).

Idle waits use `wait_event` (never `asyncio.wait_for`), so a cancellation that lands just after
a wake-up still ends the relay.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from typing import Any

import psycopg
from psycopg import sql

from services.kit.db import DictConnection, connect, session_ended
from services.kit.runtime import wait_event

log = logging.getLogger(__name__)


class NotifiedRelay(ABC):
    def __init__(
        self, *, conninfo: str, schema: str, channel: str, batch_size: int, poll_interval: float
    ) -> None:
        self.conninfo = conninfo
        self.schema = schema
        self.channel = channel
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._session: DictConnection | None = None
        self._leading = False
        self._unmarked: list[Any] = []
        """What the last round published on `_unmarked_on` and left for the next to mark."""
        self._unmarked_on: DictConnection | None = None

    def wake(self) -> None:
        """Look for new rows now (a NOTIFY arrived)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @abstractmethod
    async def publish_batch(self) -> int:
        """Publish up to `batch_size` rows; return how many were published."""

    async def prepare(self) -> None:
        """Run once before the first batch."""
        return

    def failed(self) -> None:
        """Count a failed round."""
        return

    async def leading_session(self) -> DictConnection | None:
        """The relay's own session (autocommit) once it holds the relay lock; None while
        another relay's session does (the module docstring)."""
        if self._session is None or await session_ended(self._session):
            # A mark a server crash loses publishes its rows again (the module docstring).
            self._session = await connect(self.conninfo, self.schema, flushed_commits=False)
            self._leading = False
        if not self._leading:
            cursor = await self._session.execute(
                "SELECT pg_try_advisory_lock(hashtext(%s || current_schema())) AS leads",
                (f"{self.channel}:",),
            )
            row = await cursor.fetchone()
            self._leading = bool(row and row["leads"])
            if self._leading:
                log.info("relay leads", extra={"job": self.channel})
        return self._session if self._leading else None

    def take_unmarked(self, session: DictConnection) -> list[Any]:
        """What the last round published and left for this round to mark; nothing if it was
        published on a session that has ended since (those rows go again, whoever leads)."""
        unmarked = self._unmarked if session is self._unmarked_on else []
        self._unmarked = []
        return unmarked

    def leave_unmarked(self, session: DictConnection, keys: list[Any]) -> None:
        """Leave what this round published on `session` for the next round to mark."""
        self._unmarked, self._unmarked_on = keys, session

    @abstractmethod
    async def mark(self, session: DictConnection, keys: list[Any]) -> None:
        """Mark `keys` published, in one statement: what the last round left when the relay
        stops."""

    async def close(self) -> None:
        """Mark what the last round left, then end the relay's session, which hands the lead to
        another replica's relay."""
        unmarked, on = self._unmarked, self._unmarked_on
        self._unmarked, self._unmarked_on = [], None
        if unmarked and on is not None and not on.closed:
            try:
                await self.mark(on, unmarked)
            except Exception:  # published again by the next leader: a duplicate, not a loss
                log.warning("relay could not mark its last rows", extra={"job": self.channel})
        session, self._session, self._leading = self._session, None, False
        if session is not None:
            await session.close()

    async def run(self) -> None:
        """Relay until `stop()`; errors are logged and retried, never fatal."""
        await self.prepare()
        listener = asyncio.create_task(self._listen(), name=f"{self.channel}-listen")
        try:
            while not self._stop.is_set():
                # Cleared before the round, not after it: a NOTIFY that arrives while a batch is
                # published is for rows the batch's query may not have seen, so it must start
                # the next round at once instead of being lost until the poll.
                self._wake.clear()
                try:
                    published = await self.publish_batch()
                except Exception:  # an outage: the rows wait in their table, we retry
                    self.failed()
                    log.exception("relay round failed; retrying", extra={"job": self.channel})
                    await wait_event(self._stop, 1.0)
                    continue
                if published < self.batch_size:
                    await wait_event(self._wake, self.poll_interval)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            await self.close()

    async def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True
                ) as conn:
                    channel = sql.Identifier(f"{self.channel}_{self.schema}")
                    await conn.execute(sql.SQL("LISTEN {}").format(channel))
                    async for _ in conn.notifies():
                        self.wake()
            except Exception:  # the poll fallback keeps relaying while we reconnect
                log.warning("relay listener lost its connection; reconnecting")
                await wait_event(self._stop, 1.0)
