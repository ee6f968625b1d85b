"""The proxy endpoint, registered once per service prefix of the routing table.

There is no catch-all route: paths outside the table's prefixes are free for other ASGI apps
mounted on the gateway (Socket.IO at /socket.io/), and unknown paths are 404 without any work.
"""

from __future__ import annotations

import uuid

import httpx
from fastapi import APIRouter, Request, Response

from services.gateway.errors import InvalidPath
from services.gateway.headers import upstream_request_headers, upstream_url
from services.gateway.routes import ROUTES, has_dot_segments, match_route, service_prefixes
from services.gateway.service import authorize, forward, read_body
from services.gateway.settings import Settings
from services.kit.errors import NotFound
from services.kit.logs import request_id_var

PROXIED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_NO_BODY_STATUSES = frozenset({204, 304})


async def proxy(request: Request) -> Response:
    """Check the caller against the route's policy, then forward the request as it came."""
    settings: Settings = request.app.state.settings
    path: str = request.scope["path"]
    if has_dot_segments(path):
        raise InvalidPath("Paths with '.' or '..' segments are not accepted.")
    route = match_route(request.method, path)
    if route is None:
        raise NotFound(f"No service serves {request.method} {path}.")
    authorize(settings, route.policy, request.headers.get("authorization"))
    body = await read_body(
        request.headers.get("content-length"), request.stream(), settings.max_request_body_bytes
    )
    client = request.client
    outgoing = httpx.Request(
        request.method,
        upstream_url(
            settings.upstream_url(route.upstream),
            request.scope.get("raw_path") or path.encode(),
            request.scope.get("query_string", b""),
        ),
        headers=upstream_request_headers(
            request.scope["headers"],
            request_id=request_id_var.get() or uuid.uuid4().hex,
            client_host=client.host if client else None,
            scheme=request.url.scheme,
        ),
        content=body,
    )
    answer = await forward(request.app.state.http_client, outgoing, route.upstream)
    response = Response(content=answer.body, status_code=answer.status)
    headers = list(answer.headers)
    length = answer.content_length if request.method == "HEAD" else str(len(answer.body))
    if length is not None and answer.status >= 200 and answer.status not in _NO_BODY_STATUSES:
        headers.append((b"content-length", length.encode("latin-1")))
    response.raw_headers = headers
    return response


def proxy_router() -> APIRouter:
    """Routes `/<prefix>` and `/<prefix>/...` of every service in the table to `proxy`."""
    router = APIRouter()
    for prefix in service_prefixes(ROUTES):
        for path in (prefix, prefix + "/{path:path}"):
            router.add_api_route(path, proxy, methods=PROXIED_METHODS, include_in_schema=False)
    return router
