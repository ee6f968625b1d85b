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
from urllib.parse import quote

from yarl import URL

RawHeaders = list[tuple[bytes, bytes]]
Headers = list[tuple[str, str]]

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
_VISIBLE_ASCII = "".join(chr(code) for code in range(0x21, 0x7F))


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


def _header_text(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.decode("latin-1")


def upstream_request_headers(
    headers: Iterable[tuple[bytes, bytes]],
    *,
    request_id: str,
    client_host: str | None,
    scheme: str,
) -> Headers:
    """The headers to send upstream for a client request's (lower-case, raw) headers.

    The HTTP client takes text and writes it back as UTF-8, so values are decoded as UTF-8 and
    reach the service byte for byte; a value that is not UTF-8 (obsolete Latin-1 text) is
    decoded as Latin-1 rather than refused.
    """
    headers = list(headers)
    hop_by_hop = HOP_BY_HOP | _connection_tokens(headers)
    kept: Headers = []
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
        kept.append((name.decode("latin-1"), _header_text(value)))
    chain = forwarded_for(", ".join(incoming_forwarded_for), client_host)
    if chain:
        kept.append(("x-forwarded-for", chain))
    kept.append(("x-forwarded-proto", scheme))
    if host:
        kept.append(("x-forwarded-host", _header_text(host)))
    kept.append(("x-request-id", request_id))
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


def public_location(headers: RawHeaders, upstream_base: str) -> RawHeaders:
    """`headers` with a Location into the upstream's own base URL made relative to the gateway.

    A service builds an absolute redirect from the Host it was called on, which is its internal
    address (Starlette's trailing-slash redirect answers `GET /orders/` with
    `http://orders:3002/orders`). The gateway forwards every path unchanged, so the same path
    and query, relative, lead the client back through the gateway. Any other Location passes
    as it came.
    """
    base = upstream_base.rstrip("/").encode("latin-1").lower()
    rewritten: RawHeaders = []
    for name, value in headers:
        if name == b"location" and value.lower().startswith(base):
            rest = value[len(base) :]
            if not rest or rest[:1] in (b"/", b"?", b"#"):
                value = rest if rest.startswith(b"/") else b"/" + rest
        rewritten.append((name, value))
    return rewritten


def _visible_ascii(raw: bytes) -> str:
    """`raw` as text, with any byte outside visible ASCII percent-encoded (RFC 3986 form)."""
    return raw.decode("ascii") if raw.isascii() else quote(raw, safe=_VISIBLE_ASCII)


def upstream_url(base_url: str, raw_path: bytes, query_string: bytes) -> URL:
    """The upstream URL for a request: the service's base URL, then the same path and query.

    The raw (still percent-encoded) path and query are forwarded as they came, so the service
    decodes exactly what the client sent; only bytes a URL may not hold raw (a client sending
    UTF-8 unescaped) are percent-encoded, which the service decodes to the same bytes.
    """
    target = base_url.split("?", 1)[0].rstrip("/") + _visible_ascii(raw_path)
    if query_string:
        target += "?" + _visible_ascii(query_string)
    return URL(target, encoded=True)
