"""What the gateway decides: who may pass, how much body it takes, and how a request goes upstream.

One `aiohttp.ClientSession`, opened at start, carries every upstream request over pooled
HTTP/1.1 keep-alive connections. It is aiohttp rather than httpx because the gateway's time
goes to the upstream client: measured on two cores with 32 callers, httpx's pool used about
five times the CPU per proxied request (some 5 ms against 0.9 ms).

A connection that answered 5xx is never reused. uvicorn closes the connection after an
unhandled error in the app, but the 500 that Starlette has already sent does not say
`Connection: close`, so aiohttp pooled it and the next request on it, maybe another user's
POST, met a reset connection and got 502. Closing the connection costs one new connection per
5xx, which are rare. A 5xx with `Retry-After` is the exception: a service refusing work under
load (orders' `pipeline-backlogged`) is healthy, and its refusals are common exactly when the
cores are short, so their connections stay pooled.

A request is retried once when it got no answer because of the connection (never after a
timeout, which would double the caller's wait), if
- its method is idempotent (GET, HEAD, OPTIONS, PUT, DELETE): sending it twice has the effect of
  sending it once, although a PUT whose first attempt did land may then answer for the second
  (a status change 409s against itself) rather than report the first one's success; or
- it provably never reached the upstream: the connection could not be opened (refused,
  unreachable, DNS), or the pooled connection was already closing when the request was to be
  written. aiohttp refuses that write before sending anything, and the gateway sends each
  request, head and whole body, in one write.
A POST or PATCH that may have arrived is not resent: the caller decides (with an
Idempotency-Key where the service supports one).

With tracing on, each upstream request is a CLIENT span in the caller's trace, and its
`traceparent` replaces any the client sent, so the service's span is the gateway's child
(services/kit/tracing.py).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.connector import Connection
from starlette.datastructures import State
from yarl import URL

from services.gateway.errors import PayloadTooLarge
from services.gateway.headers import Headers, RawHeaders, downstream_response_headers
from services.gateway.metrics import UPSTREAM_LATENCY, UPSTREAM_REQUESTS
from services.gateway.routes import Policy, Upstream
from services.gateway.settings import Settings
from services.kit import tracing
from services.kit.errors import Forbidden, UpstreamTimeout, UpstreamUnavailable
from services.kit.security import authenticate
from services.kit.tokens import Principal

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# aiohttp's refusal to write to a closed or closing transport, raised before it writes a byte
# (its other ClientConnectionResetError, "Connection lost", comes after a write).
WRITE_REFUSED = "Cannot write to closing transport"
# Headers aiohttp would add on its own; the gateway sends what the client sent, nothing more.
# Host is set from the upstream URL, Content-Length from the body.
_AUTO_HEADERS_SKIPPED = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
# Upstream addresses are service names whose address rarely changes; a new connection within
# this time reuses the lookup.
_DNS_CACHE_SECONDS = 30


@dataclass(frozen=True, slots=True)
class UpstreamAnswer:
    status: int
    headers: RawHeaders
    body: bytes
    content_length: str | None


def create_http_session(settings: Settings) -> aiohttp.ClientSession:
    """The pooled session every upstream request goes through; call it in a running loop.

    It keeps no cookies: a Set-Cookie from a service is meant for the browser, and a shared jar
    would replay one caller's cookies to the next. Bodies are not decompressed, so a compressed
    answer passes through as it came, matching its Content-Encoding header. The timeout covers
    the whole exchange: waiting for a pooled connection, sending, and reading the answer.
    """
    connector = aiohttp.TCPConnector(
        limit=settings.upstream_max_connections,
        keepalive_timeout=settings.upstream_keepalive_seconds,
        ttl_dns_cache=_DNS_CACHE_SECONDS,
    )
    session = aiohttp.ClientSession(
        connector=connector,
        response_class=_UpstreamResponse,
        timeout=aiohttp.ClientTimeout(total=settings.upstream_timeout_seconds),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=_AUTO_HEADERS_SKIPPED,
        trust_env=False,
        trace_configs=tracing.aiohttp_trace_configs(settings.service_name) or None,
    )
    # aiohttp resends GET, HEAD, OPTIONS, PUT and DELETE once when a reused connection drops
    # before the answer; the retry policy above is the gateway's own, so aiohttp's is turned
    # off (its test utilities use the same switch).
    session._retry_connection = False
    return session


async def authorize(state: State, policy: Policy, authorization: str | None) -> Principal | None:
    """The caller, when the route needs one; Unauthorized (401) or Forbidden (403) otherwise.

    A revoked token is refused here too, so a demoted admin's token stops at the gateway.
    """
    if policy is Policy.PUBLIC:
        return None
    principal = await authenticate(state, authorization)
    if policy is Policy.ADMIN and not principal.is_admin:
        raise Forbidden("This action needs the ADMIN role.")
    return principal


async def read_body(content_length: str | None, chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The whole request body, refused with 413 as soon as it is known to exceed `limit`."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise PayloadTooLarge(f"The request body exceeds {limit} bytes.", limit=limit)
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"The request body exceeds {limit} bytes.", limit=limit)
    return bytes(body)


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: URL
    headers: Headers
    body: bytes


async def forward(
    session: aiohttp.ClientSession, request: UpstreamRequest, upstream: Upstream
) -> UpstreamAnswer:
    """Send `request` upstream and read the whole answer; 504 on timeout, 502 if unreachable."""
    started = time.perf_counter()
    try:
        answer = await _send_retrying(session, request)
    except TimeoutError as exc:
        UPSTREAM_REQUESTS.labels(upstream, "timeout").inc()
        raise UpstreamTimeout(
            f"The {upstream} service did not answer in time.", upstream=upstream
        ) from exc
    except aiohttp.ClientError as exc:
        UPSTREAM_REQUESTS.labels(upstream, "unavailable").inc()
        raise UpstreamUnavailable(
            f"The {upstream} service is unavailable.", upstream=upstream
        ) from exc
    UPSTREAM_LATENCY.labels(upstream).observe(time.perf_counter() - started)
    UPSTREAM_REQUESTS.labels(upstream, f"{answer.status // 100}xx").inc()
    return answer


async def _send_retrying(
    session: aiohttp.ClientSession, request: UpstreamRequest
) -> UpstreamAnswer:
    try:
        return await _send(session, request)
    except TimeoutError:
        raise  # aiohttp's timeouts are connection errors too, and are not retried
    except aiohttp.ClientConnectionError as exc:
        if request.method not in IDEMPOTENT_METHODS and not never_sent(exc):
            raise
    return await _send(session, request)


def never_sent(exc: aiohttp.ClientConnectionError) -> bool:
    """Whether `exc` proves that no byte of the request reached the upstream."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return True  # no connection was made
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectionResetError) and str(cause) == WRITE_REFUSED:
            return True
        cause = cause.__cause__
    return False


def signals_failure(status: int, headers: Mapping[str, str]) -> bool:
    """Whether an upstream's answer says the upstream itself may be failing.

    A 5xx does, except a refusal with `Retry-After`: a service shedding load (orders'
    `pipeline-backlogged`) answers that by design and stays healthy, and under overload most
    answers are such refusals, so dropping their connections would add a TCP handshake on both
    sides to every refused request exactly when capacity is short.
    """
    return status >= 500 and "Retry-After" not in headers


class _UpstreamResponse(aiohttp.ClientResponse):
    """A response whose connection is closed, not pooled, when the upstream may be failing."""

    async def start(self, connection: Connection) -> _UpstreamResponse:
        protocol = connection.protocol
        await super().start(connection)
        if signals_failure(self.status, self.headers) and protocol is not None:
            if self.connection is None:
                # The whole answer had arrived, so the connection is already back in the
                # pool (nothing ran in between to take it): closing it there makes the pool
                # drop it.
                protocol.close()
            else:
                protocol.force_close()  # closed instead of pooled once the body is read
        return self


async def _send(session: aiohttp.ClientSession, request: UpstreamRequest) -> UpstreamAnswer:
    async with session.request(
        request.method,
        request.url,
        headers=request.headers,
        data=request.body or None,
        allow_redirects=False,
    ) as response:
        body = await response.read()
        return UpstreamAnswer(
            status=response.status,
            headers=downstream_response_headers(response.raw_headers),
            body=body,
            content_length=response.headers.get("Content-Length"),
        )
