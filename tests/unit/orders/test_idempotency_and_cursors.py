"""The create request's fingerprint (for Idempotency-Key) and the list cursor."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from services.orders.domain import Cursor, decode_cursor, encode_cursor, request_fingerprint
from services.orders.errors import InvalidCursor

ADDRESS = {
    "name": "Ada",
    "line1": "1 Main St",
    "line2": None,
    "city": "Berlin",
    "postalCode": "10115",
    "country": "DE",
}


def test_the_fingerprint_ignores_line_order() -> None:
    assert request_fingerprint({"a": 1, "b": 2}, ADDRESS) == request_fingerprint(
        {"b": 2, "a": 1}, ADDRESS
    )


def test_the_fingerprint_ignores_an_absent_optional_field() -> None:
    without_line2 = {k: v for k, v in ADDRESS.items() if k != "line2"}
    assert request_fingerprint({"a": 1}, ADDRESS) == request_fingerprint({"a": 1}, without_line2)


@pytest.mark.parametrize(
    ("items", "address"),
    [
        ({"a": 2}, ADDRESS),
        ({"a": 1, "b": 1}, ADDRESS),
        ({"c": 1}, ADDRESS),
        ({"a": 1}, {**ADDRESS, "city": "Munich"}),
        ({"a": 1}, {**ADDRESS, "line2": "Flat 2"}),
    ],
)
def test_the_fingerprint_changes_with_what_is_asked(
    items: dict[str, int], address: dict[str, str | None]
) -> None:
    assert request_fingerprint(items, address) != request_fingerprint({"a": 1}, ADDRESS)


def test_the_fingerprint_is_a_sha256_hex_digest() -> None:
    digest = request_fingerprint({"a": 1}, ADDRESS)
    assert len(digest) == 64
    int(digest, 16)


def test_a_cursor_round_trips_exactly() -> None:
    cursor = Cursor(created_at=datetime(2025, 3, 1, 12, 30, 5, 123456, tzinfo=UTC), id=uuid.uuid4())
    encoded = encode_cursor(cursor)
    assert "=" not in encoded
    assert decode_cursor(encoded) == cursor


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not base64 at all!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'["2025-01-01T00:00:00+00:00"]').decode(),
        base64.urlsafe_b64encode(b'["yesterday", "0b6f3c3e-6a0e-4c55-9a51-2b1f0f0d7c11"]').decode(),
        base64.urlsafe_b64encode(b'["2025-01-01T00:00:00+00:00", "not-a-uuid"]').decode(),
        base64.urlsafe_b64encode(b'["2025-01-01T00:00:00+00:00", 5]').decode(),
        base64.urlsafe_b64encode(b'"2025-01-01T00:00:00+00:00"').decode(),
        base64.urlsafe_b64encode(b"{").decode(),
    ],
)
def test_a_bad_cursor_is_refused(value: str) -> None:
    with pytest.raises(InvalidCursor) as caught:
        decode_cursor(value)
    assert (caught.value.status, caught.value.code) == (422, "invalid-cursor")


def test_a_cursor_of_a_naive_time_is_read_as_utc() -> None:
    order_id = uuid.uuid4()
    value = base64.urlsafe_b64encode(f'["2025-03-01T12:00:00", "{order_id}"]'.encode()).decode()
    assert decode_cursor(value) == Cursor(datetime(2025, 3, 1, 12, tzinfo=UTC), order_id)
