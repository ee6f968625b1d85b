"""The pure parts of the login rate limits: window maths, keys and the client address."""

from __future__ import annotations

import ipaddress

import pytest

from services.auth.ratelimit import (
    Window,
    address_key,
    client_address,
    failures_key,
    register_address_key,
    retry_after_seconds,
)

WINDOW = Window(limit=5, seconds=300)
GATEWAY = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/24"))


@pytest.mark.parametrize(
    ("pttl_ms", "expected"),
    [(299_001, 300), (300_000, 300), (1_500, 2), (1_000, 1), (1, 1), (0, 1), (-1, 300), (-2, 300)],
)
def test_retry_after_rounds_up_and_falls_back_to_the_window(pttl_ms: int, expected: int) -> None:
    assert retry_after_seconds(pttl_ms, WINDOW) == expected


def test_failure_keys_are_per_email_and_address_without_the_email() -> None:
    key = failures_key("ada@example.com", "192.0.2.1")
    assert "ada" not in key
    assert "example" not in key
    assert key == failures_key("ada@example.com", "192.0.2.1")
    assert key != failures_key("bob@example.com", "192.0.2.1")
    assert key != failures_key("ada@example.com", "192.0.2.2")
    assert address_key("192.0.2.1") != address_key("192.0.2.2")
    assert register_address_key("192.0.2.1") != address_key("192.0.2.1")


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        ("192.0.2.7", None, "192.0.2.7"),
        # An untrusted peer's header is ignored: anyone could write it.
        ("192.0.2.7", "198.51.100.1", "192.0.2.7"),
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("127.0.0.1", " 198.51.100.1 ", "198.51.100.1"),
        # The rightmost untrusted entry is the one our proxy saw; the rest is the client's.
        ("127.0.0.1", "203.0.113.9, 198.51.100.1", "198.51.100.1"),
        ("127.0.0.1", "203.0.113.9, 198.51.100.1, 10.0.0.5", "198.51.100.1"),
        # Only trusted hops: the request started inside, the leftmost is the origin.
        ("127.0.0.1", "10.0.0.8, 10.0.0.5", "10.0.0.8"),
        # Garbage written left of a trusted hop stops the walk at that hop.
        ("127.0.0.1", "garbage, 10.0.0.5", "10.0.0.5"),
        ("127.0.0.1", "not-an-ip", "127.0.0.1"),
        ("127.0.0.1", "2001:db8::1", "2001:db8::1"),
        (None, "198.51.100.1", "unknown"),
    ],
)
def test_client_address(peer: str | None, forwarded_for: str | None, expected: str) -> None:
    assert client_address(peer, forwarded_for, GATEWAY) == expected
