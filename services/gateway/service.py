"""What the gateway decides: who may pass, how much body it takes, and how a request goes upstream.

One `httpx.AsyncClient`, created at start, carries every upstream request over pooled HTTP/1.1
keep-alive connections. Only safe methods (GET, HEAD, OPTIONS) are retried, once, and only when
the connection failed before an answer came (a refused connection or a keep-alive connection
the service had just closed): the request had no effect then, and a safe method has none
anyway. PUT and DELETE are idempotent in HTTP's terms, but a retried status change would
answer 409 for its own first attempt, so they are not retried either; neither is a timeout,
which would double the caller's wait.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from services.gateway.errors import PayloadTooLarge
from services.gateway.headers import RawHeaders, downstream_response_headers
from services.gateway.metrics import UPSTREAM_LATENCY, UPSTREAM_REQUESTS
from services.gateway.routes import Policy, Upstream
from services.gateway.settings import Settings
from services.kit.errors import Forbidden, UpstreamTimeout, UpstreamUnavailable
from services.kit.tokens import Principal, bearer_token, verify_access_token

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FAILED_BEFORE_ANSWER = (httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True, slots=True)
class UpstreamAnswer:
    status: int
    headers: RawHeaders
    body: bytes
    content_length: str | None


def create_http_client(settings: Settings) -> httpx.AsyncClient:
    """The pooled client every upstream request goes through.

    It keeps no cookies: a Set-Cookie from a service is meant for the browser, and a shared jar
    would replay one caller's cookies to the next.
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.upstream_timeout_seconds),
        limits=httpx.Limits(
            max_connections=settings.upstream_max_connections,
            max_keepalive_connections=settings.upstream_max_keepalive,
            keepalive_expiry=settings.upstream_keepalive_seconds,
        ),
        http1=True,
        http2=False,
        follow_redirects=False,
        trust_env=False,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )


def authorize(settings: Settings, policy: Policy, authorization: str | None) -> Principal | None:
    """The caller, when the route needs one; Unauthorized (401) or Forbidden (403) otherwise."""
    if policy is Policy.PUBLIC:
        return None
    principal = verify_access_token(settings, bearer_token(authorization))
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


async def forward(
    client: httpx.AsyncClient, request: httpx.Request, upstream: Upstream
) -> UpstreamAnswer:
    """Send `request` upstream and read the whole answer; 504 on timeout, 502 if unreachable."""
    started = time.perf_counter()
    try:
        answer = await _send_retrying_safe(client, request)
    except httpx.TimeoutException as exc:
        UPSTREAM_REQUESTS.labels(upstream, "timeout").inc()
        raise UpstreamTimeout(
            f"The {upstream} service did not answer in time.", upstream=upstream
        ) from exc
    except _FAILED_BEFORE_ANSWER as exc:
        UPSTREAM_REQUESTS.labels(upstream, "unavailable").inc()
        raise UpstreamUnavailable(
            f"The {upstream} service is unavailable.", upstream=upstream
        ) from exc
    UPSTREAM_LATENCY.labels(upstream).observe(time.perf_counter() - started)
    UPSTREAM_REQUESTS.labels(upstream, f"{answer.status // 100}xx").inc()
    return answer


async def _send_retrying_safe(client: httpx.AsyncClient, request: httpx.Request) -> UpstreamAnswer:
    if request.method in SAFE_METHODS:
        try:
            return await _send(client, request)
        except _FAILED_BEFORE_ANSWER:
            pass  # a safe request that got no answer had no effect: one more try
    return await _send(client, request)


async def _send(client: httpx.AsyncClient, request: httpx.Request) -> UpstreamAnswer:
    # Streamed and read raw, so a compressed answer passes through still compressed, matching
    # its Content-Encoding header.
    response = await client.send(request, stream=True)
    try:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    finally:
        await response.aclose()
    return UpstreamAnswer(
        status=response.status_code,
        headers=downstream_response_headers(response.headers.raw),
        body=body,
        content_length=response.headers.get("content-length"),
    )
