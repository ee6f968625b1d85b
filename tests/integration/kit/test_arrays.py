"""The kit's array parameters (services/kit/arrays.py) reach PostgreSQL as the values they
hold, NULLs and empty arrays included, and a value PostgreSQL cannot take is refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from services.kit.arrays import (
    BigintArray,
    ByteaArray,
    IntArray,
    JsonbArray,
    NumericArray,
    SqlArray,
    TextArray,
    TimestamptzArray,
    UuidArray,
)

pytestmark = pytest.mark.integration

CASES: list[tuple[SqlArray[Any], str, list[Any]]] = [
    (UuidArray([uuid.UUID(int=1), None, uuid.UUID(int=2**128 - 1)]), "b", []),
    (TextArray(["plain", "", 'naïve, "quoted" {braces} \\ back', None]), "b", []),
    (IntArray([0, -1, 2**31 - 1, -(2**31), None]), "b", []),
    (BigintArray([2**63 - 1, -(2**63), None]), "b", []),
    (ByteaArray([b"", b"\x00\xff raw", None]), "b", []),
    (NumericArray([Decimal("0"), Decimal("-12.50"), Decimal("1E+3"), None]), "t", []),
    (
        TimestamptzArray(
            [
                datetime(2026, 12, 5, 23, 59, 59, 999_999, tzinfo=UTC),
                datetime(1999, 12, 31, 12, 0, tzinfo=timezone(timedelta(hours=-5))),
                None,
            ]
        ),
        "b",
        [],
    ),
    (
        JsonbArray([{"name": "Ada", "n": [1, 2.5, None]}, Jsonb({"wrapped": True}), "text", None]),
        "b",
        [{"name": "Ada", "n": [1, 2.5, None]}, {"wrapped": True}, "text", None],
    ),
]


def _type_name(conn: psycopg.Connection[Any], element: str) -> str:
    row = conn.execute(f"SELECT '{element}[]'::regtype::text").fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture
def conn(postgres_server: Any) -> Any:
    database = postgres_server.create_database("arrays")
    with psycopg.connect(postgres_server.conninfo(database)) as connection:
        yield connection


@pytest.mark.parametrize(("array", "placeholder", "expected"), CASES)
def test_each_array_reaches_postgres_as_the_values_it_holds(
    conn: psycopg.Connection[Any], array: SqlArray[Any], placeholder: str, expected: list[Any]
) -> None:
    element = array.element
    row = conn.execute(
        f"SELECT %{placeholder}::{element}[], pg_typeof(%{placeholder})::text,"
        f" cardinality(%{placeholder})",
        (array, array, array),
    ).fetchone()
    assert row is not None
    values, sent_as, count = row
    assert values == (expected or array.values)
    assert sent_as == _type_name(conn, element)
    assert count == len(array.values)


@pytest.mark.parametrize(("array", "placeholder", "_expected"), CASES)
def test_an_empty_array_is_an_empty_array_of_its_type(
    conn: psycopg.Connection[Any], array: SqlArray[Any], placeholder: str, _expected: list[Any]
) -> None:
    empty = type(array)([])
    row = conn.execute(
        f"SELECT %{placeholder}, pg_typeof(%{placeholder})::text",
        (empty, empty),
    ).fetchone()
    assert row == ([], _type_name(conn, array.element))


def test_unnest_takes_columns_side_by_side(conn: psycopg.Connection[Any]) -> None:
    ids = [uuid.uuid4(), uuid.uuid4()]
    rows = conn.execute(
        "SELECT * FROM unnest(%b::uuid[], %b::text[], %t::numeric[]) AS t (id, name, total)",
        (UuidArray(ids), TextArray(["a", None]), NumericArray([Decimal("1.50"), Decimal("2")])),
    ).fetchall()
    assert rows == [(ids[0], "a", Decimal("1.50")), (ids[1], None, Decimal("2"))]


def test_text_with_a_nul_character_and_a_time_without_a_zone_are_refused(
    conn: psycopg.Connection[Any],
) -> None:
    with pytest.raises(psycopg.DataError, match="NUL"):
        conn.execute("SELECT %b::text[]", (TextArray(["ok", "bro\x00ken"]),))
    with pytest.raises(psycopg.DataError, match="time zone"):
        conn.execute("SELECT %b::timestamptz[]", (TimestamptzArray([datetime(2026, 1, 1)]),))
