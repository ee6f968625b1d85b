"""What the gateway decides: who may pass, how much body it takes, and how a request goes upstream.

One `UpstreamClient`, opened at start, carries every upstream request over pooled HTTP/1.1
keep-alive connections (services/kit/http1.py: a request written in one buffer, httptools
reading the answer). It took about 325 µs of the gateway's CPU per proxied request where
aiohttp's client took about 450, and httpx's pool five times aiohttp's
(docs/benchmarks-analysis.md).

A connection that answered 5xx is never reused. uvicorn closes the connection after an
unhandled error in the app, but the 500 that Starlette has already sent does not say
`Connection: close`, so a pooled connection would meet the reset with the next request on it,
maybe another user's POST, and answer 502. Closing the connection costs one new connection per
5xx, which are rare. A 5xx with `Retry-After` is the exception: a service refusing work under
load (orders' `pipeline-backlogged`) is healthy, and its refusals are common exactly when the
cores are short, so their connections stay pooled.

A request is retried once when it got no answer because of the connection (never after a
timeout, which would double the caller's wait), if
- its method is idempotent (GET, HEAD, OPTIONS, PUT, DELETE): sending it twice has the effect of
  sending it once, although a PUT whose first attempt did land may then answer for the second
  (a status change 409s against itself) rather than report the first one's success; or
- it provably never reached the upstream: the connection could not be opened (refused,
  unreachable, DNS). A pooled connection the upstream closed meanwhile is never written to: the
  client takes another.
A POST or PATCH that may have arrived is not resent: the caller decides (with an
Idempotency-Key where the service supports one).

With tracing on, each upstream request is a CLIENT span in the caller's trace, and its
`traceparent` replaces any the client sent, so the service's span is the gateway's child
(services/kit/tracing.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.datastructures import State
from yarl import URL

from services.gateway.errors import PayloadTooLarge
from services.gateway.headers import Headers, RawHeaders, downstream_response_headers
from services.gateway.metrics import UPSTREAM_LATENCY, UPSTREAM_REQUESTS
from services.gateway.routes import Policy, Upstream
from services.gateway.settings import Settings
from services.kit import http1, tracing
from services.kit.errors import Forbidden, UpstreamTimeout, UpstreamUnavailable
from services.kit.metrics import labelled
from services.kit.security import authenticate
from services.kit.tokens import Principal

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True, slots=True)
class UpstreamAnswer:
    status: int
    headers: RawHeaders
    body: bytes
    content_length: str | None


@dataclass(frozen=True, slots=True)
class UpstreamClient:
    """The pooled client every upstream request goes through, the whole exchange bounded by
    `timeout` (waiting for a free connection, sending, reading the answer); `service` names
    the tracer of its CLIENT spans."""

    http: http1.Client
    timeout: float
    service: str

    async def request(
        self, method: str, url: URL, headers: Headers, body: bytes = b""
    ) -> http1.Answer:
        """One exchange, in a CLIENT span when tracing is on; a connection whose answer says the
        upstream may be failing (`signals_failure`) is closed, not pooled."""
        span, trace_headers = tracing.client_span(self.service, method, url)
        if trace_headers:
            headers = [(k, v) for k, v in headers if k.lower() not in tracing.TRACE_HEADERS]
            headers += trace_headers.items()
        try:
            async with asyncio.timeout(self.timeout):
                answer = await self.http.request(
                    method,
                    url.raw_host or "",
                    url.port or 80,
                    url.raw_path_qs,
                    headers,
                    body,
                    reuse=_reusable,
                )
        except BaseException as exc:
            tracing.end_span(span, exc)
            raise
        tracing.end_client_span(span, answer.status)
        return answer


@asynccontextmanager
async def open_upstream_client(settings: Settings) -> AsyncIterator[UpstreamClient]:
    """The gateway's upstream client, its idle connections closed on exit."""
    http = http1.Client(
        limit=settings.upstream_max_connections,
        keepalive_seconds=settings.upstream_keepalive_seconds,
    )
    try:
        yield UpstreamClient(http, settings.upstream_timeout_seconds, settings.service_name)
    finally:
        http.close()


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
    client: UpstreamClient, request: UpstreamRequest, upstream: Upstream
) -> UpstreamAnswer:
    """Send `request` upstream and read the whole answer; 504 on timeout, 502 if unreachable."""
    started = time.perf_counter()
    try:
        answer = await _send_retrying(client, request)
    except TimeoutError as exc:
        UPSTREAM_REQUESTS.labels(upstream, "timeout").inc()
        raise UpstreamTimeout(
            f"The {upstream} service did not answer in time.", upstream=upstream
        ) from exc
    except http1.Http1Error as exc:
        UPSTREAM_REQUESTS.labels(upstream, "unavailable").inc()
        raise UpstreamUnavailable(
            f"The {upstream} service is unavailable.", upstream=upstream
        ) from exc
    labelled(UPSTREAM_LATENCY, upstream).observe(time.perf_counter() - started)
    labelled(UPSTREAM_REQUESTS, upstream, f"{answer.status // 100}xx").inc()
    return answer


async def _send_retrying(client: UpstreamClient, request: UpstreamRequest) -> UpstreamAnswer:
    try:
        return await _send(client, request)
    except http1.ConnectionLost:
        if request.method not in IDEMPOTENT_METHODS:
            raise
    except http1.ConnectFailed:
        pass  # nothing was sent
    return await _send(client, request)


def signals_failure(status: int, headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether an upstream's answer says the upstream itself may be failing.

    A 5xx does, except a refusal with `Retry-After`: a service shedding load (orders'
    `pipeline-backlogged`) answers that by design and stays healthy, and under overload most
    answers are such refusals, so dropping their connections would add a TCP handshake on both
    sides to every refused request exactly when capacity is short.
    """
    return status >= 500 and not any(name.lower() == b"retry-after" for name, _ in headers)


def _reusable(answer: http1.Answer) -> bool:
    return not signals_failure(answer.status, answer.headers)


async def _send(client: UpstreamClient, request: UpstreamRequest) -> UpstreamAnswer:
    answer = await client.request(request.method, request.url, request.headers, request.body)
    length = answer.header(b"content-length")
    return UpstreamAnswer(
        status=answer.status,
        headers=downstream_response_headers(answer.headers),
        body=answer.body,
        content_length=length.decode("latin-1") if length is not None else None,
    )
