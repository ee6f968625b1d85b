"""The consumer shell on a real Postgres: one transaction per event or per group of events,
claimed once, effects after commit, outcomes counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
import pytest
from confluent_kafka import Message

from services.kit.after_commit import AfterCommit
from services.kit.consumer import Applied, Consumed, EventShell, Handler
from services.kit.db import DictConnection, Pool, apply_migrations, create_pool
from services.kit.events import Envelope
from services.kit.logs import order_id_var
from services.kit.metrics import EVENT_PROCESSING, EVENTS_CONSUMED
from services.kit.order_events import RESERVATION_EXPIRED, ReservationExpired
from services.kit.outbox import KIT_MIGRATIONS, event
from services.kit.settings import ServiceSettings
from tests.integration.consumed import as_messages

pytestmark = pytest.mark.integration
SCHEMA = "shell_test"


class Ledger:
    """A toy service: records each expiry in a table, inside the shell's transaction."""

    def __init__(self) -> None:
        self.effects: list[str] = []
        self.seen_order_ids: list[str | None] = []
        self.fail_with: Exception | None = None

    async def record(self, conn: DictConnection, envelope: Envelope[Any]) -> Applied:
        data: ReservationExpired = envelope.data
        self.seen_order_ids.append(order_id_var.get())
        await conn.execute("INSERT INTO ledger (order_id) VALUES (%s)", (data.order_id,))
        if self.fail_with is not None:
            raise self.fail_with

        async def effect() -> None:
            self.effects.append(data.order_id)

        return Applied("recorded", (effect,))


HANDLERS: dict[str, Handler[Ledger]] = {
    RESERVATION_EXPIRED: Handler(ReservationExpired, Ledger.record),
}


@pytest.fixture
async def pool(postgres_server: Any) -> AsyncIterator[Pool]:
    settings = ServiceSettings(**postgres_server.env(postgres_server.create_database("shell")))
    pool = create_pool(settings, SCHEMA)
    await pool.open()
    await apply_migrations(pool, SCHEMA, KIT_MIGRATIONS, prefix="kit:")
    async with pool.connection() as conn:
        await conn.execute("CREATE TABLE ledger (order_id text NOT NULL)")
    yield pool
    await pool.close()


def expired(order_id: str) -> Envelope[Any]:
    data = ReservationExpired(
        order_id=order_id, user_id="u", version=1, expired_at=datetime.now(UTC)
    )
    return event("/test", RESERVATION_EXPIRED, order_id, data)


def delivered(*envelopes: Envelope[Any]) -> list[Message]:
    return as_messages(*((RESERVATION_EXPIRED, envelope) for envelope in envelopes))


async def transactions_that_wrote_the_ledger(pool: Pool) -> int:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT count(DISTINCT xmin::text) AS n FROM ledger")
        row = await cursor.fetchone()
    assert row is not None
    return int(row["n"])


def timed() -> float:
    total: float = EVENT_PROCESSING.labels("shell-test", RESERVATION_EXPIRED)._sum.get()
    return total


async def ledger_rows(pool: Pool) -> list[str]:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT order_id FROM ledger ORDER BY order_id")
        return [row["order_id"] for row in await cursor.fetchall()]


def consumed(outcome: str) -> float:
    value: float = EVENTS_CONSUMED.labels("shell-test", RESERVATION_EXPIRED, outcome)._value.get()
    return value


async def test_an_event_is_applied_once_and_its_effects_run_after_commit(pool: Pool) -> None:
    ledger = Ledger()
    after_commit = AfterCommit("shell-test")
    job = after_commit.job()
    runner = asyncio.create_task(job.run())
    shell = EventShell("shell-test", ledger, pool, HANDLERS, after_commit)
    message = expired("o-1")
    processed, duplicates = consumed("processed"), consumed("duplicate")

    first = await shell.handle(RESERVATION_EXPIRED, message.to_bytes())
    again = await shell.handle(RESERVATION_EXPIRED, message.to_bytes())
    await after_commit.drained()

    assert first is not None
    assert first.outcome == "recorded"
    assert again is None
    assert await ledger_rows(pool) == ["o-1"]
    assert ledger.effects == ["o-1"]
    assert ledger.seen_order_ids == ["o-1"], "the order id is in the log context"
    assert consumed("processed") == processed + 1
    assert consumed("duplicate") == duplicates + 1
    job.stop()
    await runner


async def test_a_failed_unit_of_work_rolls_back_the_claim_and_runs_no_effect(pool: Pool) -> None:
    ledger = Ledger()
    ledger.fail_with = RuntimeError("deadlock detected")
    after_commit = AfterCommit("shell-test")
    shell = EventShell("shell-test", ledger, pool, HANDLERS, after_commit)
    message = expired("o-2")

    with pytest.raises(RuntimeError):
        await shell.handle(RESERVATION_EXPIRED, message.to_bytes())
    assert await ledger_rows(pool) == []
    assert after_commit.pending == 0

    ledger.fail_with = None  # the consumer's retry: the claim was rolled back with the change
    assert await shell.handle(RESERVATION_EXPIRED, message.to_bytes()) is not None
    assert await ledger_rows(pool) == ["o-2"]


async def test_an_unknown_topic_or_unparsable_event_raises_for_the_dead_letter_path(
    pool: Pool,
) -> None:
    shell = EventShell("shell-test", Ledger(), pool, HANDLERS, AfterCommit("shell-test"))
    with pytest.raises(ValueError, match="no handler"):
        await shell.handle("nobody.listens", expired("o-3").to_bytes())
    with pytest.raises(orjson.JSONDecodeError):
        await shell.handle(RESERVATION_EXPIRED, b"not json")


async def test_a_group_is_applied_in_one_transaction_with_each_event_claimed_once(
    pool: Pool,
) -> None:
    ledger = Ledger()
    after_commit = AfterCommit("shell-test")
    job = after_commit.job()
    runner = asyncio.create_task(job.run())
    shell = EventShell("shell-test", ledger, pool, HANDLERS, after_commit)
    seen_before = expired("o-4")
    assert await shell.handle(RESERVATION_EXPIRED, seen_before.to_bytes()) is not None
    processed, duplicates, seconds = consumed("processed"), consumed("duplicate"), timed()

    await shell.apply_group(delivered(expired("o-5"), seen_before, expired("o-6"), expired("o-7")))
    await after_commit.drained()

    assert await ledger_rows(pool) == ["o-4", "o-5", "o-6", "o-7"]
    assert await transactions_that_wrote_the_ledger(pool) == 2, "one for o-4, one for the group"
    assert ledger.effects == ["o-4", "o-5", "o-6", "o-7"]
    assert ledger.seen_order_ids[1:] == ["o-5", "o-6", "o-7"], "each event's id in the log context"
    assert order_id_var.get() is None
    assert consumed("processed") == processed + 3
    assert consumed("duplicate") == duplicates + 1
    assert timed() > seconds
    job.stop()
    await runner


async def test_an_event_twice_in_a_group_is_applied_once(pool: Pool) -> None:
    ledger = Ledger()
    after_commit = AfterCommit("shell-test")
    shell = EventShell("shell-test", ledger, pool, HANDLERS, after_commit)
    twice = expired("o-10")
    processed, duplicates = consumed("processed"), consumed("duplicate")

    await shell.apply_group(delivered(twice, expired("o-11"), twice))

    assert await ledger_rows(pool) == ["o-10", "o-11"]
    assert ledger.seen_order_ids == ["o-10", "o-11"], "the second copy reached no handler"
    assert consumed("processed") == processed + 2
    assert consumed("duplicate") == duplicates + 1
    assert after_commit.pending == 2


async def test_a_group_with_a_failing_event_keeps_nothing_and_runs_no_effect(pool: Pool) -> None:
    ledger = Ledger()
    after_commit = AfterCommit("shell-test")
    shell = EventShell("shell-test", ledger, pool, HANDLERS, after_commit)
    processed = consumed("processed")
    group = delivered(expired("o-8"), expired("o-9"))

    async def fail_on_the_second(
        service: Ledger, conn: DictConnection, envelope: Envelope[Any]
    ) -> Applied:
        applied = await service.record(conn, envelope)
        if envelope.subject == "o-9":
            raise RuntimeError("deadlock detected")
        return applied

    failing: dict[str, Handler[Ledger]] = {
        RESERVATION_EXPIRED: Handler(ReservationExpired, fail_on_the_second)
    }
    with pytest.raises(RuntimeError):
        await EventShell("shell-test", ledger, pool, failing, after_commit).apply_group(group)

    assert await ledger_rows(pool) == [], "the first event's change went with the group"
    assert after_commit.pending == 0
    assert consumed("processed") == processed
    # The consumer then applies the events one by one; their claims were rolled back too.
    for message in group:
        assert await shell.handle(RESERVATION_EXPIRED, message.value() or b"") is not None
    assert await ledger_rows(pool) == ["o-8", "o-9"]


class KeepingLedger:
    """A toy service whose ledger is its own record of applied events: one statement keeps the
    event id and, only if it was new, the expiry (as analytics' event log does)."""

    def __init__(self) -> None:
        self.autocommit: list[bool] = []

    async def keep(self, conn: DictConnection, envelope: Envelope[Any]) -> Applied | None:
        self.autocommit.append(conn.autocommit)
        cursor = await conn.execute(
            "INSERT INTO kept_ledger (event_id, order_id) VALUES (%s, %s)"
            " ON CONFLICT (event_id) DO NOTHING RETURNING 1",
            (envelope.id, envelope.subject),
        )
        return Applied("kept") if await cursor.fetchone() else None


async def create_kept_ledger(pool: Pool) -> None:
    async with pool.connection() as conn:
        await conn.execute("CREATE TABLE kept_ledger (event_id uuid PRIMARY KEY, order_id text)")


KEEPING: dict[str, Handler[KeepingLedger]] = {
    RESERVATION_EXPIRED: Handler(
        ReservationExpired, KeepingLedger.keep, dedupes_itself=True, one_statement=True
    ),
}


async def test_a_handler_that_dedupes_itself_is_claimed_nothing_and_runs_alone_in_autocommit(
    pool: Pool,
) -> None:
    await create_kept_ledger(pool)
    keeping = KeepingLedger()
    shell = EventShell("shell-test", keeping, pool, KEEPING, AfterCommit("shell-test"))
    processed, duplicates = consumed("processed"), consumed("duplicate")
    lone, twice = expired("o-20"), expired("o-21")

    assert await shell.handle(RESERVATION_EXPIRED, lone.to_bytes()) is not None
    assert await shell.handle(RESERVATION_EXPIRED, lone.to_bytes()) is None
    await shell.apply_group(delivered(twice, lone, expired("o-22"), twice))

    # A lone event is its one statement, committed by itself; a group keeps its transaction.
    assert keeping.autocommit == [True, True, False, False, False, False]
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT order_id FROM kept_ledger ORDER BY order_id")
        assert [row["order_id"] for row in await cursor.fetchall()] == ["o-20", "o-21", "o-22"]
        cursor = await conn.execute("SELECT count(*) AS n FROM processed_events")
        assert await cursor.fetchone() == {"n": 0}, "the shell claimed nothing"
    assert consumed("processed") == processed + 3
    assert consumed("duplicate") == duplicates + 3


class GroupKeepingLedger(KeepingLedger):
    """KeepingLedger that also keeps a whole group in one statement, with an effect per kept
    event."""

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[list[str]] = []
        self.effects: list[str] = []

    async def keep_many(
        self, conn: DictConnection, events: Sequence[Consumed]
    ) -> list[Applied | None]:
        self.autocommit.append(conn.autocommit)
        self.groups.append([e.event.subject for e in events])
        cursor = await conn.execute(
            "INSERT INTO kept_ledger (event_id, order_id)"
            " SELECT DISTINCT ON (id) id, subject"
            " FROM unnest(%s::uuid[], %s::text[]) AS e (id, subject)"
            " ON CONFLICT (event_id) DO NOTHING RETURNING event_id::text",
            ([e.event.id for e in events], [e.event.subject for e in events]),
        )
        kept = {row["event_id"] for row in await cursor.fetchall()}
        applied: list[Applied | None] = []
        for envelope in (e.event for e in events):
            if envelope.id in kept:
                kept.discard(envelope.id)
                applied.append(Applied("kept", (partial(self._effect, envelope.subject),)))
            else:
                applied.append(None)
        return applied

    async def _effect(self, order_id: str) -> None:
        self.effects.append(order_id)


@pytest.mark.parametrize("groups_in_one_statement", [False, True])
async def test_a_group_whose_handlers_share_apply_many_is_one_call(
    pool: Pool, groups_in_one_statement: bool
) -> None:
    """In the group's transaction, or, for an `apply_many` that changes any group in one
    statement, on an autocommit connection: the same rows and effects either way."""
    await create_kept_ledger(pool)
    keeping = GroupKeepingLedger()
    handlers = {
        RESERVATION_EXPIRED: Handler.of_many(
            RESERVATION_EXPIRED,
            ReservationExpired,
            GroupKeepingLedger.keep_many,
            one_statement=True,
            groups_in_one_statement=groups_in_one_statement,
        )
    }
    after_commit = AfterCommit("shell-test")
    job = after_commit.job()
    runner = asyncio.create_task(job.run())
    shell = EventShell("shell-test", keeping, pool, handlers, after_commit)
    seen_before, twice = expired("o-30"), expired("o-31")
    assert await shell.handle(RESERVATION_EXPIRED, seen_before.to_bytes()) is not None
    processed, duplicates, seconds = consumed("processed"), consumed("duplicate"), timed()

    await shell.apply_group(delivered(twice, seen_before, expired("o-32"), twice))
    await after_commit.drained()

    assert keeping.groups == [["o-30"], ["o-31", "o-30", "o-32", "o-31"]], "the group in one call"
    assert keeping.autocommit == [True, groups_in_one_statement], (
        "a lone event alone, then the group"
    )
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT order_id FROM kept_ledger ORDER BY order_id")
        assert [row["order_id"] for row in await cursor.fetchall()] == ["o-30", "o-31", "o-32"]
    assert keeping.effects == ["o-30", "o-31", "o-32"], "each kept event's effect, in order"
    assert consumed("processed") == processed + 2
    assert consumed("duplicate") == duplicates + 2
    assert timed() > seconds
    job.stop()
    await runner


def test_groups_in_one_statement_needs_apply_many_in_one_statement() -> None:
    with pytest.raises(ValueError, match="groups_in_one_statement"):
        Handler.of_many(
            RESERVATION_EXPIRED,
            ReservationExpired,
            GroupKeepingLedger.keep_many,
            groups_in_one_statement=True,
        )


def test_apply_many_needs_a_handler_that_dedupes_itself() -> None:
    with pytest.raises(ValueError, match="apply_many"):
        Handler(
            ReservationExpired, GroupKeepingLedger.keep, apply_many=GroupKeepingLedger.keep_many
        )
