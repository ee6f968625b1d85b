"""PostgreSQL's statements per order during the profiled run, from pg_stat_statements.

The development stack's PostgreSQL preloads pg_stat_statements (devstack/servers.py); the bench
creates the extension in the stack's database if it is missing and resets its counters before
the run. Each service connects as its own role (devstack/roles.py), so a statement's role says
whose it is; the bench's own queries (as the superuser) are left out. Execution time is the
server's own, without the round trips and the clients' work. A role's statement is one row
however many query ids pg_stat_statements counted its text under (the orders service's create
was counted under two in some runs, some of its executions under the second during bursts of
concurrent creates).

The same run's write-ahead log comes from pg_stat_wal, reset with the statements: records,
full-page images, bytes and flushes (`fdatasync` of the WAL) per order. It counts the whole
server (autovacuum and the stack's background work too); a flush costs the process that waits
for it CPU and the disk's journal work, so flushes per order say how many commits waited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import psycopg
from psycopg.rows import dict_row

from bench import stages


@dataclass(frozen=True)
class Statement:
    role: str
    query: str
    calls: int
    exec_ms: float
    rows: int


@dataclass(frozen=True)
class Wal:
    records: int
    full_page_images: int
    bytes: int
    flushes: int


@dataclass
class Statements:
    rows: list[Statement] = field(default_factory=list)
    unavailable: str = ""
    wal: Wal | None = None


NO_STACK = "the stack's database is not known (no stack.json)"


def _first_line(error: psycopg.Error) -> str:
    return str(error).strip().splitlines()[0]


def reset() -> str:
    """Start counting from zero: "" when done, else why not."""
    info = stages.conninfo()
    if info is None:
        return NO_STACK
    try:
        with psycopg.connect(info, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("SELECT pg_stat_statements_reset()")
            conn.execute("SELECT pg_stat_reset_shared('wal')")
    except psycopg.Error as error:
        return f"pg_stat_statements is not available ({_first_line(error)})"
    return ""


def read() -> Statements:
    """Every service's statements counted since `reset`, the most execution time first."""
    info = stages.conninfo()
    if info is None:
        return Statements(unavailable=NO_STACK)
    try:
        with psycopg.connect(info, row_factory=dict_row) as conn:
            found = conn.execute(
                """
                SELECT r.rolname AS role, s.query, sum(s.calls)::bigint AS calls,
                       sum(s.total_exec_time) AS exec_ms, sum(s.rows)::bigint AS rows
                FROM pg_stat_statements s
                JOIN pg_roles r ON r.oid = s.userid
                JOIN pg_database d ON d.oid = s.dbid
                WHERE d.datname = current_database() AND r.rolname <> current_user
                GROUP BY r.rolname, s.query
                ORDER BY exec_ms DESC
                """
            ).fetchall()
            wal = conn.execute(
                "SELECT wal_records AS records, wal_fpi AS full_page_images, wal_bytes AS bytes,"
                " wal_sync AS flushes FROM pg_stat_wal"
            ).fetchone()
    except psycopg.Error as error:
        return Statements(unavailable=_first_line(error))
    return Statements(
        [
            Statement(row["role"], row["query"], row["calls"], row["exec_ms"], row["rows"])
            for row in found
        ],
        wal=Wal(**{name: int(value) for name, value in wal.items()}) if wal else None,
    )


def shorten(query: str, width: int = 110) -> str:
    """One line of at most `width` characters, for a table cell."""
    flat = re.sub(r"\s+", " ", query).strip().replace("|", "\\|")
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def table(found: Statements, orders: int, top: int = 12) -> list[str]:
    """The report's section: the statements with the most execution time, per settled order."""
    lines = ["", "### PostgreSQL's statements per order (pg_stat_statements, the same run)", ""]
    if found.unavailable:
        return [*lines, f"No statement counts: {found.unavailable}."]
    if not orders or not found.rows:
        return [*lines, "No statement counts: no order settled in the run."]
    total_ms = sum(s.exec_ms for s in found.rows)
    total_calls = sum(s.calls for s in found.rows)
    lines += [
        f"All statements: {total_calls / orders:.1f} per order, {total_ms / orders:.2f} ms of "
        "execution per order (the server's time in the executor, not counting parsing, "
        "commits, WAL writes and the protocol)."
        + _wal_sentence(found.wal, orders)
        + " The most expensive:",
        "",
        "| role | statement | calls per order | ms per order | ms per call | rows per call |",
        "|---|---|---|---|---|---|",
    ]
    for s in found.rows[:top]:
        lines.append(
            f"| {s.role} | `{shorten(s.query)}` | {s.calls / orders:.2f} | "
            f"{s.exec_ms / orders:.3f} | {s.exec_ms / max(s.calls, 1):.3f} | "
            f"{s.rows / max(s.calls, 1):.1f} |"
        )
    return lines


def _wal_sentence(wal: Wal | None, orders: int) -> str:
    if wal is None:
        return ""
    return (
        f" The write-ahead log (pg_stat_wal, the whole server): {wal.records / orders:.0f} records,"
        f" {wal.full_page_images / orders:.1f} full-page images, {wal.bytes / orders / 1024:.1f}"
        f" KiB and {wal.flushes / orders:.2f} flushes per order."
    )
