"""The kit's pool hands out no connection whose session the server ended while it was idle (a
restart or a failover), so no request fails on one."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from services.kit.db import create_pool
from services.kit.settings import ServiceSettings
from tests.support import eventually

pytestmark = pytest.mark.integration


async def test_connections_ended_by_the_server_are_replaced_not_handed_out(
    postgres_server: Any,
) -> None:
    database = postgres_server.create_database("pool")
    settings = ServiceSettings(**postgres_server.env(database), DB_POOL_MIN=10, DB_POOL_MAX=10)
    pool = create_pool(settings, "public")
    await pool.open(wait=True)
    try:
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
    finally:
        await pool.close()
