"""Which headers cross the gateway, in each direction.

Requests keep their end-to-end headers, Authorization included, since every service verifies
the JWT itself. Hop-by-hop headers (RFC 9110 section 7.6.1, and any the Connection header
names) stay on their own hop. X-User-* identity headers are dropped: the identity a service
trusts comes from the signed token, never from a header a client can type. The gateway sets
X-Forwarded-For/Proto/Host and X-Request-ID itself.

Responses keep the service's headers except hop-by-hop ones, and except those the gateway
writes itself: Date, Server, X-Request-ID and Content-Length (uvicorn and the request-id
middleware add them again, and a repeated header is ambiguous), and CORS headers (the gateway
alone answers for CORS; two Access-Control-Allow-Origin values make browsers refuse the answer).
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

RawHeaders = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
IDENTITY_HEADER_PREFIX = b"x-user-"
_SET_BY_GATEWAY_ON_REQUEST = frozenset(
    {
        b"host",
        b"content-length",
        b"x-request-id",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
    }
)
_SET_BY_GATEWAY_ON_RESPONSE = frozenset({b"content-length", b"date", b"server", b"x-request-id"})
_CORS_HEADER_PREFIX = b"access-control-"


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names an upstream or client declared hop-by-hop in its Connection header."""
    return frozenset(
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
        if token.strip()
    )


def forwarded_for(existing: str | None, client_host: str | None) -> str | None:
    """The X-Forwarded-For chain with the caller's address appended.

    uvicorn's proxy-headers support already replaces a trusted proxy's address by the last
    address of the chain, so when the caller is that last address it is not appended twice.
    """
    chain = [hop.strip() for hop in (existing or "").split(",") if hop.strip()]
    if client_host and (not chain or chain[-1] != client_host):
        chain.append(client_host)
    return ", ".join(chain) or None


def upstream_request_headers(
    headers: Iterable[tuple[bytes, bytes]],
    *,
    request_id: str,
    client_host: str | None,
    scheme: str,
) -> RawHeaders:
    """The headers to send upstream for a client request's (lower-case, raw) headers."""
    headers = list(headers)
    hop_by_hop = HOP_BY_HOP | _connection_tokens(headers)
    kept: RawHeaders = []
    incoming_forwarded_for: list[str] = []
    host: bytes | None = None
    for raw_name, value in headers:
        name = raw_name.lower()
        if name == b"x-forwarded-for":
            incoming_forwarded_for.append(value.decode("latin-1"))
        elif name == b"host":
            host = value
        if (
            name in hop_by_hop
            or name in _SET_BY_GATEWAY_ON_REQUEST
            or name.startswith(IDENTITY_HEADER_PREFIX)
        ):
            continue
        kept.append((name, value))
    chain = forwarded_for(", ".join(incoming_forwarded_for), client_host)
    if chain:
        kept.append((b"x-forwarded-for", chain.encode("latin-1")))
    kept.append((b"x-forwarded-proto", scheme.encode("latin-1")))
    if host:
        kept.append((b"x-forwarded-host", host))
    kept.append((b"x-request-id", request_id.encode("latin-1")))
    return kept


def downstream_response_headers(headers: Iterable[tuple[bytes, bytes]]) -> RawHeaders:
    """The headers of an upstream response that the gateway passes on to the client."""
    headers = list(headers)
    hop_by_hop = HOP_BY_HOP | _connection_tokens(headers)
    kept: RawHeaders = []
    for raw_name, value in headers:
        name = raw_name.lower()
        if (
            name in hop_by_hop
            or name in _SET_BY_GATEWAY_ON_RESPONSE
            or name.startswith(_CORS_HEADER_PREFIX)
        ):
            continue
        kept.append((name, value))
    return kept


def upstream_url(base_url: str, raw_path: bytes, query_string: bytes) -> httpx.URL:
    """The upstream URL for a request: the service's base URL, then the same path and query.

    The raw (still percent-encoded) path is forwarded, so the service decodes exactly what the
    client sent.
    """
    base = httpx.URL(base_url)
    target = base.raw_path.split(b"?", 1)[0].rstrip(b"/") + raw_path
    if query_string:
        target += b"?" + query_string
    return base.copy_with(raw_path=target)
