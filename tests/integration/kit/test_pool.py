"""The kit's pool hands out no connection whose session the server ended while it was idle (a
restart or a failover), so no request fails on one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import psycopg
import pytest

from services.kit.db import DictConnection, Pool, autocommit, connect, create_pool
from services.kit.settings import ServiceSettings
from tests.support import eventually

pytestmark = pytest.mark.integration


async def test_connections_ended_by_the_server_are_replaced_not_handed_out(
    postgres_server: Any,
) -> None:
    database = postgres_server.create_database("pool")
    async with _opened_pool(postgres_server, database, size=10) as pool:
        async with await psycopg.AsyncConnection.connect(
            postgres_server.conninfo(database), autocommit=True
        ) as admin:
            ended = await admin.execute(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()) AS t"
            )
            assert (await ended.fetchone() or (0,))[0] == 10

            async def gone() -> bool:
                cursor = await admin.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                return bool((await cursor.fetchone() or (1,))[0] == 0)

            await eventually(gone, what="the sessions to end")

        for _ in range(12):  # more than the pool holds: every connection is handed out once
            async with pool.connection() as conn:
                cursor = await conn.execute("SELECT 1 AS one")
                assert await cursor.fetchone() == {"one": 1}


async def test_autocommit_runs_each_statement_on_its_own_and_lends_the_connection_back_as_it_was(
    postgres_server: Any,
) -> None:
    database = postgres_server.create_database("pool_autocommit")
    async with _opened_pool(postgres_server, database, size=1) as pool:
        async with pool.connection() as conn:
            await conn.execute("CREATE TABLE kept (n int PRIMARY KEY)")
        async with autocommit(pool) as conn:
            await conn.execute("INSERT INTO kept VALUES (1)")
            cursor = await conn.execute("SELECT now() = statement_timestamp() AS own")
            assert await cursor.fetchone() == {"own": True}, "no transaction around it"
        with pytest.raises(psycopg.errors.UniqueViolation):
            await _insert_then_collide(autocommit(pool), 2)

        # The one connection is back with a transaction per block: both inserts roll back.
        async with pool.connection() as conn:
            assert conn.autocommit is False
        with pytest.raises(psycopg.errors.UniqueViolation):
            await _insert_then_collide(pool.connection(), 3)
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT array_agg(n ORDER BY n) AS ns FROM kept")
            assert await cursor.fetchone() == {"ns": [1, 2]}


async def test_an_autocommit_block_cancelled_mid_statement_lends_nothing_in_autocommit(
    postgres_server: Any,
) -> None:
    database = postgres_server.create_database("pool_cancelled")
    async with _opened_pool(postgres_server, database, size=1) as pool:
        for _ in range(3):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2), autocommit(pool) as conn:
                    await conn.execute("SELECT pg_sleep(5)")
            # The one connection, or the one that replaced it, is a transaction per block.
            async with pool.connection() as conn:
                assert conn.autocommit is False
                cursor = await conn.execute("SELECT 1 AS one")
                assert await cursor.fetchone() == {"one": 1}


async def test_prepared_statements_keep_one_generic_plan_in_pooled_and_own_sessions(
    postgres_server: Any,
) -> None:
    database = postgres_server.create_database("pool_plans")
    async with _opened_pool(postgres_server, database, size=1) as pool:
        async with pool.connection() as conn:
            await conn.execute("CREATE TABLE items (id int PRIMARY KEY, n int)")
            await conn.execute("INSERT INTO items SELECT g, g FROM generate_series(1, 1000) g")
        async with pool.connection() as conn:
            custom, generic = await _plans_of_a_keyed_statement(conn)
            assert custom == 0 < generic
        own = await connect(postgres_server.conninfo(database), "public")
        async with own:
            custom, generic = await _plans_of_a_keyed_statement(own)
            assert custom == 0 < generic


async def _plans_of_a_keyed_statement(conn: DictConnection) -> tuple[int, int]:
    """Runs a statement that takes an array until psycopg has prepared it and PostgreSQL ran
    it a few times; answers how many of those executions PostgreSQL planned afresh (custom) and
    how many ran its one generic plan."""
    for ids in ([1], [2, 3], [4], [5, 6, 7], [8], [9], [10], [11]):
        cursor = await conn.execute("SELECT n FROM items WHERE id = ANY(%s)", (ids,))
        assert [row["n"] for row in await cursor.fetchall()] == ids
    cursor = await conn.execute(
        "SELECT custom_plans, generic_plans FROM pg_prepared_statements"
        " WHERE statement LIKE 'SELECT n FROM items%%'"
    )
    row = await cursor.fetchone()
    assert row is not None, "psycopg prepared it"
    return row["custom_plans"], row["generic_plans"]


@asynccontextmanager
async def _opened_pool(postgres_server: Any, database: str, *, size: int) -> AsyncIterator[Pool]:
    settings = ServiceSettings(**postgres_server.env(database), DB_POOL_MIN=size, DB_POOL_MAX=size)
    pool = create_pool(settings, "public")
    await pool.open(wait=True)
    try:
        yield pool
    finally:
        await pool.close()


async def _insert_then_collide(
    block: AbstractAsyncContextManager[DictConnection], first: int
) -> None:
    async with block as conn:
        await conn.execute("INSERT INTO kept VALUES (%s)", (first,))
        await conn.execute("INSERT INTO kept VALUES (1)")
