"""The deliveries' outbox in the database.

They wake their relay: a delivery that becomes pending, by insert or by a dead letter's requeue,
sends NOTIFY deliveries_<schema> at commit; nothing else does. And the relay's round marks only
what did not change since the last round read it: a delivery sent again in between is read and
published again, never marked queued unpublished."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import DictRow

from devstack.testing import PostgresServer
from services.kit.db import apply_migrations, connect, create_pool
from services.kit.outbox import KIT_MIGRATIONS
from services.kit.settings import ServiceSettings
from services.notifications import repository as repo
from services.notifications.attempts import claim
from services.notifications.dead_letters import requeue_delivery
from tests.integration.fixtures import schema_connection
from tests.integration.notifications.support import delivery, notification

pytestmark = pytest.mark.integration
CHANNEL = f"deliveries_{repo.SCHEMA}"


@pytest.fixture(scope="module")
async def database(postgres_server: PostgresServer) -> str:
    name = postgres_server.create_database("wakeups")
    env: dict[str, Any] = postgres_server.env(name)
    pool = create_pool(ServiceSettings(**env), repo.SCHEMA)
    await pool.open()
    await apply_migrations(pool, repo.SCHEMA, KIT_MIGRATIONS, prefix="kit:")
    await apply_migrations(pool, repo.SCHEMA, repo.MIGRATIONS)
    await pool.close()
    return name


@pytest.fixture
def listener(
    postgres_server: PostgresServer, database: str
) -> Iterator[psycopg.Connection[DictRow]]:
    with schema_connection(postgres_server, database, repo.SCHEMA) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        yield conn


@pytest.fixture
def db(postgres_server: PostgresServer, database: str) -> Iterator[psycopg.Connection[DictRow]]:
    with schema_connection(postgres_server, database, repo.SCHEMA) as conn:
        yield conn


def wake_ups(listener: psycopg.Connection[DictRow]) -> list[str]:
    return [n.channel for n in listener.notifies(timeout=0.5, stop_after=10)]


def test_a_pending_delivery_wakes_the_relay_once_per_transaction(
    db: psycopg.Connection[DictRow], listener: psycopg.Connection[DictRow]
) -> None:
    with db.transaction():
        first, second = notification(db), notification(db)
        delivery(db, first, "pending")
        delivery(db, second, "pending")
    assert wake_ups(listener) == [CHANNEL]


def test_a_skipped_delivery_wakes_nothing(
    db: psycopg.Connection[DictRow], listener: psycopg.Connection[DictRow]
) -> None:
    delivery(db, notification(db), "skipped")
    assert wake_ups(listener) == []


async def test_a_requeued_dead_delivery_wakes_the_relay(
    postgres_server: PostgresServer,
    database: str,
    db: psycopg.Connection[DictRow],
    listener: psycopg.Connection[DictRow],
) -> None:
    dead = delivery(db, notification(db), "pending")
    db.execute("UPDATE deliveries SET status = 'dead' WHERE id = %s", (dead,))
    db.execute("UPDATE deliveries SET status = 'queued' WHERE id = %s", (dead,))
    db.execute("UPDATE deliveries SET status = 'dead' WHERE id = %s", (dead,))
    assert wake_ups(listener) == [CHANNEL], "the insert only; leaving pending wakes nothing"

    async with await psycopg.AsyncConnection.connect(
        postgres_server.conninfo(database),
        autocommit=True,
        row_factory=psycopg.rows.dict_row,
        options=f"-c search_path={repo.SCHEMA}",
    ) as conn:
        assert await requeue_delivery(conn, dead, b"{}")
        assert not await requeue_delivery(conn, dead, b"{}"), "only a dead delivery is requeued"
    assert wake_ups(listener) == [CHANNEL]


async def test_a_round_marks_only_deliveries_unchanged_since_the_last_round_read_them(
    postgres_server: PostgresServer, database: str, db: psycopg.Connection[DictRow]
) -> None:
    kept, taken, resent = (delivery(db, notification(db), "pending") for _ in range(3))
    ours = {kept, taken, resent}
    session = await connect(postgres_server.conninfo(database), repo.SCHEMA)
    try:
        read = [row for row in await repo.next_deliveries(session, 100, []) if row.id in ours]
        assert {row.id for row in read} == ours
        # Between the rounds: a worker takes one message; another fails, goes dead, and an
        # admin sends it again.
        assert (await claim(session, [taken], claim_timeout=30)).claimed == {taken}
        db.execute(
            "UPDATE deliveries SET status = 'dead', payload = NULL, updated_at = now()"
            " WHERE id = %s",
            (resent,),
        )
        assert await requeue_delivery(session, resent, b'{"again": true}')

        following = await repo.next_deliveries(session, 100, [(r.id, r.updated_at) for r in read])
        assert not ours & {row.id for row in following}, "the last round's rows are not read again"
        rows = {
            row["id"]: (row["status"], row["payload"])
            for row in db.execute(
                "SELECT id, status, payload FROM deliveries WHERE id = ANY(%s)", (list(ours),)
            )
        }
        assert rows == {
            kept: ("queued", None),  # the broker has the message: the row lets it go
            taken: ("sending", None),  # so has the worker that took it
            resent: ("pending", b'{"again": true}'),
        }
        again = {row.id: row.payload for row in await repo.next_deliveries(session, 100, [])}
        assert again.get(resent) == b'{"again": true}', "sent again: published again"
    finally:
        await session.close()
