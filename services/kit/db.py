"""The psycopg 3 connection pool and the migration runner.

Each service owns one Postgres schema (auth, orders, inventory...) in the shared database;
its pool sets `search_path` to it, so SQL in repositories names tables unqualified. Migrations
are plain numbered SQL files in the service's `migrations/` folder, applied in order at start
and recorded in `<schema>.schema_migrations`; an advisory lock keeps two replicas from applying
them at once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import select
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection, OperationalError, sql
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from services.kit.settings import ServiceSettings

log = logging.getLogger(__name__)
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

DictConnection = AsyncConnection[dict[str, Any]]

GENERIC_PLANS = "-c plan_cache_mode=force_generic_plan"
"""psycopg prepares a statement once a connection has run it five times; PostgreSQL then plans
it afresh at each execution (a custom plan) unless it judges the parameter-free (generic) plan
no costlier. For the statements that take an array (`id = ANY(%s)`) or a LIMIT as a parameter
it never did: the workers' claim and record, the relays' marking and the unread count were
planned at every call, and planning took a quarter of all statements' time on the server.
The services' statements are keyed lookups and writes whose plan does not depend on the
values, so their plans are made once per connection."""
Pool = AsyncConnectionPool[DictConnection]


def create_pool(settings: ServiceSettings, schema: str) -> Pool:
    """A pool (not yet opened) whose connections return rows as dicts and use `schema`; it
    never hands out a connection whose session the server ended (`_SessionCheck`)."""
    check = _SessionCheck()
    pool: Pool = AsyncConnectionPool(
        settings.db_conninfo,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        kwargs=_session_options(schema),
        connection_class=AsyncConnection[dict[str, Any]],
        check=check,
        open=False,
        name=f"{settings.service_name}-pool",
    )
    check.pool = pool
    return pool


@dataclass
class Filters:
    """A listing's WHERE conditions, holding only those whose values are given: the statement
    then says what it filters on, and its one generic plan (`GENERIC_PLANS`) fits it, where
    `%(x)s IS NULL OR ...` needs a plan for the values at hand to drop the filters not given."""

    params: dict[str, Any] = field(default_factory=dict)
    conditions: list[str] = field(default_factory=list)

    def add(self, condition: str, **values: Any) -> None:
        """`condition` with its named parameters, unless one of `values` is None."""
        if any(value is None for value in values.values()):
            return
        self.conditions.append(condition)
        self.params.update(values)

    @property
    def where(self) -> str:
        return " AND ".join(self.conditions) or "true"


def _session_options(schema: str, *, flushed_commits: bool = True) -> dict[str, Any]:
    """What every connection of a service gets: rows as dicts, tables found in `schema`, and
    generic plans for the statements psycopg prepares (`GENERIC_PLANS`); without
    `flushed_commits`, commits that do not wait for their WAL flush."""
    options = f"-c search_path={schema},public {GENERIC_PLANS}"
    if not flushed_commits:
        options += " -c synchronous_commit=off"
    return {"row_factory": dict_row, "options": options}


async def connect(conninfo: str, schema: str, *, flushed_commits: bool = True) -> DictConnection:
    """A connection of its own, outside the pool, set up as the pool's are, in autocommit:
    for a session that outlives any one piece of work (a relay's, holding its lock). Without
    `flushed_commits` its commits return before their WAL is flushed, so a server crash may
    lose the last of them: only for writes that may be lost and made again (a relay's marks)."""
    conn: DictConnection = await AsyncConnection.connect(
        conninfo, autocommit=True, **_session_options(schema, flushed_commits=flushed_commits)
    )
    return conn


@asynccontextmanager
async def autocommit(pool: Pool) -> AsyncIterator[DictConnection]:
    """A pooled connection on which each statement commits on its own: no BEGIN and no COMMIT
    to send and wait for. For work that is one statement (a read, or a write that holds
    together by itself, a data-modifying `WITH` included); statements that must commit
    together need `pool.connection()` and its transaction instead.

    The connection goes back to the pool as the pool's others are, a transaction per
    `pool.connection()` block, however the block ended: autocommit is turned off here, or, if
    the block left the connection mid-statement, the connection is closed and the pool replaces
    it. (Here rather than in a reset callback of the pool, with which the pool hands every
    returned connection to a background task.)"""
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        try:
            yield conn
        finally:
            if conn.pgconn.transaction_status == TransactionStatus.IDLE:
                try:
                    await conn.set_autocommit(False)
                except BaseException:
                    await conn.close()  # it must not be lent again in autocommit
                    raise
            else:  # left mid-statement (cancelled): the pool replaces a closed connection
                await conn.close()


async def session_ended(conn: DictConnection) -> bool:
    """Whether the server ended this idle connection's session (closing it if so), seen
    without a round trip: the termination notice, or the end of the stream, waits on its
    socket. Only for a connection that is sent nothing while idle (no LISTEN)."""
    if conn.closed:
        return True
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if not readable:
        return False
    await conn.close()
    return True


class _SessionCheck:
    """The pool's check of a connection it is about to hand out, without a round trip.

    A server that restarts or fails over ends its sessions: each idle connection in the pool
    then has the server's termination notice, or the end of the stream, waiting on its socket.
    An idle connection is never sent anything else (notifications go to the relays' own
    connections), so a readable socket means the session is over. The check closes it and
    raises, so the pool drops it and hands out another instead of the request failing on it,
    and it has the pool test every idle connection at once (`check()`), so the others that
    ended with it are replaced together rather than found one by one behind the pool's
    back-off. Costs one poll of the socket per checkout.
    """

    def __init__(self) -> None:
        self.pool: Pool | None = None
        self._sweep: asyncio.Task[None] | None = None

    async def __call__(self, conn: DictConnection) -> None:
        if not await session_ended(conn):
            return
        if self.pool is not None and (self._sweep is None or self._sweep.done()):
            log.warning("database session ended by the server; testing the pooled connections")
            self._sweep = asyncio.create_task(self.pool.check())
        raise OperationalError("the server ended this idle session")


def migration_files(directory: Path) -> list[tuple[str, Path]]:
    """The migration files of a folder in the order they apply: (version, path)."""
    files = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name} must be named NNNN_description.sql")
        files.append((path.stem, path))
    return files


async def apply_migrations(
    pool: Pool, schema: str, directory: Path, *, prefix: str = ""
) -> list[str]:
    """Apply the not yet applied migrations of `directory`; returns the versions applied.

    `prefix` keeps the versions of a shared folder (the kit's outbox tables) apart from the
    service's own.
    """
    applied_now: list[str] = []
    async with pool.connection() as conn:
        await conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"migrations:{schema}",))
        try:
            await _ensure_schema(conn, schema)
            await conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.schema_migrations ("
                    " version text PRIMARY KEY,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(sql.Identifier(schema))
            )
            await conn.commit()
            cursor = await conn.execute(
                sql.SQL("SELECT version FROM {}.schema_migrations").format(sql.Identifier(schema))
            )
            done = {row["version"] for row in await cursor.fetchall()}
            for stem, path in migration_files(directory):
                version = prefix + stem
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text().encode())
                    await conn.execute(
                        sql.SQL("INSERT INTO {}.schema_migrations (version) VALUES (%s)").format(
                            sql.Identifier(schema)
                        ),
                        (version,),
                    )
                log.info("applied migration", extra={"schema": schema, "version": version})
                applied_now.append(version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"migrations:{schema}",))
            await conn.commit()
    return applied_now


async def ping(pool: Pool) -> None:
    """Raise unless the database answers."""
    async with pool.connection(timeout=2) as conn:
        await conn.execute("SELECT 1")


async def _ensure_schema(conn: DictConnection, schema: str) -> None:
    """Create the schema only when it is missing: PostgreSQL checks CREATE on the database for
    `CREATE SCHEMA IF NOT EXISTS` even when the schema exists, and a service's role owns its
    schema without that right (SECURITY.md, "Database roles")."""
    cursor = await conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
    if await cursor.fetchone() is None:
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
