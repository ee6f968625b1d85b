"""The profiled run's tables: py-spy's samples by library, PostgreSQL's statements per order."""

from __future__ import annotations

import pytest

from bench import profile, statements

SITE = "/app/.venv/lib/python3.11/site-packages"
ENTRY = "<module> (/app/.venv/bin/realtimeorder:6)"
RAW = "\n".join(
    [
        f"{ENTRY};run ({SITE}/uvicorn/main.py:632);wait_async ({SITE}/psycopg/waiting.py:201) 6",
        f"{ENTRY};create (/app/services/orders/service.py:170);"
        "place_order (/app/services/orders/repository.py:88) 2",
        f"{ENTRY};Runner.run (/usr/lib/python3.11/asyncio/runners.py:118) 1",
        f"{ENTRY};emit (/usr/lib/python3.11/logging/__init__.py:1113) 1",
    ]
)


def test_samples_are_counted_by_innermost_frame_with_the_package_path() -> None:
    leaves = profile.parse_raw(RAW + "\ngarbage line\n")

    assert leaves == {
        "wait_async (psycopg/waiting.py)": 6,
        "place_order (services/orders/repository.py)": 2,
        "Runner.run (asyncio/runners.py)": 1,
        "emit (logging/__init__.py)": 1,
    }


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ("wait_async (psycopg/waiting.py)", "PostgreSQL driver (psycopg)"),
        ("publish_nowait (services/kit/kafka.py)", "Kafka client"),
        ("dispatch (services/kit/web.py)", "HTTP server and framework"),
        ("start_span (opentelemetry/sdk/trace/__init__.py)", "tracing"),
        ("place_order (services/orders/repository.py)", "the service's own code"),
        ("deepcopy (copy.py)", profile.OTHER),
    ],
)
def test_a_frame_is_charged_to_the_library_it_runs_in(frame: str, expected: str) -> None:
    assert profile.category(frame) == expected


def test_the_table_splits_each_programs_cpu_per_order_by_category() -> None:
    result = profile.Profiles(
        rate=60,
        seconds=20,
        programs={
            "orders": profile.Profile(profile.parse_raw(RAW)),
            "auth": profile.Profile(profile.parse_raw(RAW)),
        },
        cpu_ms_per_order={"orders": 5.0, "auth": 0.01},
        settled=1200,
    )

    lines = profile.table(result)

    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines if line.startswith("| ")}
    assert rows["category"] == "| category | orders |"  # auth spends too little to show
    assert rows["PostgreSQL driver (psycopg)"] == "| PostgreSQL driver (psycopg) | 3.00 |"
    assert rows["the service's own code"] == "| the service's own code | 1.00 |"
    assert rows["**all (from /proc)**"] == "| **all (from /proc)** | 5.00 |"
    assert "- orders: `wait_async (psycopg/waiting.py)` 60%" in "\n".join(lines)
    # 5 ms for each of 1,200 orders is 6 s of CPU: 300 samples at 50 Hz.
    (samples,) = [line for line in lines if line.startswith("Samples taken")]
    assert f"orders {profile.Profile(profile.parse_raw(RAW)).samples:,} (300)" in samples


def test_without_py_spy_the_table_says_why() -> None:
    lines = profile.table(profile.Profiles(rate=60, seconds=20, unavailable="py-spy is missing"))

    assert lines[-1] == "No profile: py-spy is missing."


def test_statements_are_reported_per_settled_order() -> None:
    found = statements.Statements(
        [
            statements.Statement("orders", "UPDATE orders\n   SET status = $1 | x", 200, 40.0, 200),
            statements.Statement("inventory", "SELECT 1", 100, 10.0, 300),
        ]
    )

    lines = statements.table(found, orders=100)

    assert "All statements: 3.0 per order, 0.50 ms of execution per order" in lines[3]
    assert "write-ahead log" not in lines[3]
    assert (
        "| orders | `UPDATE orders SET status = $1 \\| x` | 2.00 | 0.400 | 0.200 | 1.0 |" in lines
    )
    assert "| inventory | `SELECT 1` | 1.00 | 0.100 | 0.100 | 3.0 |" in lines


def test_the_write_ahead_log_is_reported_per_settled_order() -> None:
    found = statements.Statements(
        [statements.Statement("orders", "SELECT 1", 100, 10.0, 100)],
        wal=statements.Wal(records=15_000, full_page_images=250, bytes=5_120_000, flushes=650),
    )

    lines = statements.table(found, orders=100)

    assert (
        "The write-ahead log (pg_stat_wal, the whole server): 150 records, 2.5 full-page images,"
        " 50.0 KiB and 6.50 flushes per order." in lines[3]
    )


def test_a_long_statement_is_cut_to_one_line() -> None:
    short = statements.shorten("SELECT " + "x, " * 100 + "y", width=30)

    assert len(short) == 30
    assert short.endswith("...")
