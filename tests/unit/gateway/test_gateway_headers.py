"""Which headers cross the gateway, in each direction, and the upstream URL."""

from __future__ import annotations

import pytest

from services.gateway.headers import (
    downstream_response_headers,
    forwarded_for,
    public_location,
    upstream_request_headers,
    upstream_url,
)


def _names(headers: list[tuple[str, str]]) -> list[str]:
    return [name for name, _ in headers]


def test_request_keeps_end_to_end_headers_and_drops_hop_by_hop_ones() -> None:
    incoming = [
        (b"host", b"api.example.com"),
        (b"authorization", b"Bearer abc"),
        (b"content-type", b"application/json"),
        (b"content-length", b"12"),
        (b"accept", b"*/*"),
        (b"connection", b"keep-alive, X-Private-Hop"),
        (b"x-private-hop", b"1"),
        (b"keep-alive", b"timeout=5"),
        (b"te", b"trailers"),
        (b"transfer-encoding", b"chunked"),
        (b"upgrade", b"websocket"),
        (b"proxy-authorization", b"Basic x"),
        (b"idempotency-key", b"k-1"),
    ]
    out = upstream_request_headers(
        incoming, request_id="rid-1", client_host="10.0.0.5", scheme="https"
    )
    assert out == [
        ("authorization", "Bearer abc"),
        ("content-type", "application/json"),
        ("accept", "*/*"),
        ("idempotency-key", "k-1"),
        ("x-forwarded-for", "10.0.0.5"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "api.example.com"),
        ("x-request-id", "rid-1"),
    ]


def test_request_drops_every_identity_header_a_client_could_forge() -> None:
    incoming = [
        (b"x-user-id", b"admin-1"),
        (b"X-User-Role", b"ADMIN"),
        (b"x-user-email", b"root@example.com"),
        (b"x-username", b"kept"),
    ]
    out = upstream_request_headers(incoming, request_id="r", client_host=None, scheme="http")
    assert _names(out) == ["x-username", "x-forwarded-proto", "x-request-id"]


def test_request_id_and_forwarding_headers_are_the_gateways_not_the_clients() -> None:
    incoming = [
        (b"x-request-id", b"client-id"),
        (b"x-forwarded-proto", b"gopher"),
        (b"x-forwarded-host", b"evil.example"),
        (b"host", b"gw:3000"),
    ]
    out = dict(
        upstream_request_headers(
            incoming, request_id="kit-id", client_host="1.2.3.4", scheme="http"
        )
    )
    assert out["x-request-id"] == "kit-id"
    assert out["x-forwarded-proto"] == "http"
    assert out["x-forwarded-host"] == "gw:3000"


def test_request_extends_an_incoming_forwarded_for_chain() -> None:
    incoming = [(b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-for", b"198.51.100.2")]
    out = dict(
        upstream_request_headers(incoming, request_id="r", client_host="10.0.0.9", scheme="http")
    )
    assert out["x-forwarded-for"] == "198.51.100.1, 198.51.100.2, 10.0.0.9"


@pytest.mark.parametrize(
    ("existing", "client", "expected"),
    [
        (None, "10.0.0.1", "10.0.0.1"),
        ("", "10.0.0.1", "10.0.0.1"),
        ("203.0.113.7", "10.0.0.1", "203.0.113.7, 10.0.0.1"),
        # uvicorn already made the trusted proxy's last hop the client: not repeated
        ("203.0.113.7", "203.0.113.7", "203.0.113.7"),
        ("203.0.113.7 , 10.0.0.1", None, "203.0.113.7, 10.0.0.1"),
        (None, None, None),
    ],
)
def test_forwarded_for(existing: str | None, client: str | None, expected: str | None) -> None:
    assert forwarded_for(existing, client) == expected


def test_response_drops_hop_by_hop_cors_and_gateway_owned_headers() -> None:
    upstream = [
        (b"content-type", b"application/json"),
        (b"content-length", b"2"),
        (b"date", b"Tue, 01 Jan 2030 00:00:00 GMT"),
        (b"server", b"uvicorn"),
        (b"x-request-id", b"rid"),
        (b"connection", b"close, X-Internal"),
        (b"x-internal", b"secret"),
        (b"transfer-encoding", b"chunked"),
        (b"access-control-allow-origin", b"*"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"Retry-After", b"30"),
        (b"content-encoding", b"gzip"),
    ]
    assert downstream_response_headers(upstream) == [
        (b"content-type", b"application/json"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"retry-after", b"30"),
        (b"content-encoding", b"gzip"),
    ]


@pytest.mark.parametrize(
    ("base", "raw_path", "query", "expected"),
    [
        ("http://127.0.0.1:3001", b"/auth/login", b"", "http://127.0.0.1:3001/auth/login"),
        ("http://127.0.0.1:3001/", b"/auth/login", b"", "http://127.0.0.1:3001/auth/login"),
        (
            "http://orders:3002",
            b"/orders/a%2Fb",
            b"status=CREATED&q=a%20b",
            "http://orders:3002/orders/a%2Fb?status=CREATED&q=a%20b",
        ),
        ("http://svc/api/", b"/orders", b"x=1", "http://svc/api/orders?x=1"),
        # already-encoded characters stay as they are, even ones a URL library would decode
        ("http://svc", b"/inventory/%7Ea%2e", b"", "http://svc/inventory/%7Ea%2e"),
        # raw UTF-8 from a client is percent-encoded: the service decodes the same bytes
        (
            "http://svc",
            b"/orders/caf\xc3\xa9",
            b"q=\xc3\xa9&r=%C3%A9",
            "http://svc/orders/caf%C3%A9?q=%C3%A9&r=%C3%A9",
        ),
    ],
)
def test_upstream_url_keeps_the_raw_path_and_query(
    base: str, raw_path: bytes, query: bytes, expected: str
) -> None:
    url = upstream_url(base, raw_path, query)
    assert str(url) == expected
    assert url.raw_path_qs == "/" + expected.split("/", 3)[3]


def test_utf8_header_values_are_sent_byte_for_byte() -> None:
    incoming = [(b"x-note", "café ☕".encode()), (b"x-legacy", b"caf\xe9")]
    out = upstream_request_headers(incoming, request_id="r", client_host=None, scheme="http")
    # the HTTP client writes header text as UTF-8
    assert [value.encode() for _, value in out[:2]] == ["café ☕".encode(), "café".encode()]


@pytest.mark.parametrize(
    ("location", "public"),
    [
        (b"http://orders:3002/orders", b"/orders"),
        (b"HTTP://Orders:3002/orders?page=2", b"/orders?page=2"),
        (b"http://orders:3002", b"/"),
        (b"http://orders:3002?page=2", b"/?page=2"),
        (b"http://orders:30020/orders", b"http://orders:30020/orders"),
        (b"https://pay.example/checkout", b"https://pay.example/checkout"),
        (b"/orders", b"/orders"),
    ],
)
def test_only_a_location_into_the_upstream_is_made_relative(location: bytes, public: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"location", location)]
    assert public_location(headers, "http://orders:3002/") == [
        (b"content-type", b"text/plain"),
        (b"location", public),
    ]
