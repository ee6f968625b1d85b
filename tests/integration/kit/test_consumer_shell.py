"""The consumer shell on a real Postgres: one transaction per event, claimed once, effects after
commit, outcomes counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from services.kit.after_commit import AfterCommit
from services.kit.consumer import Applied, EventShell, Handler
from services.kit.db import DictConnection, Pool, apply_migrations, create_pool
from services.kit.events import Envelope
from services.kit.logs import order_id_var
from services.kit.metrics import EVENTS_CONSUMED
from services.kit.order_events import RESERVATION_EXPIRED, ReservationExpired
from services.kit.outbox import KIT_MIGRATIONS, event
from services.kit.settings import ServiceSettings

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
