"""The Socket.IO server for live order updates, served on the gateway's origin at /socket.io/.

A client authenticates with its access token when it connects (`auth={"token": ...}` or an
`Authorization: Bearer` header); without a valid token, or from a browser page whose origin is
not one of the web apps' (CORS_ORIGINS), the connection is refused. The server
puts each connection in its user's room, and admins also in the admin room; there is no handler
that lets a client join a room. Emits come from any process through Redis (see
services.kit.live), so this server can run as several replicas.

The server listens on Redis from the app's start (`listen_for_pushes`), not from its first
connection as python-socketio would by default, so no push to an early client is lost while
the subscription is still being set up; `stop_listening` closes the subscription on shutdown.

A client that reconnects asks for what it missed with `order.sync` {orderId, sinceVersion}; the
server fetches the order's timeline from the orders service with the client's own token, so the
orders service decides what the caller may see. The answer is {orderId, updates} or
{orderId, error}; an unexpected failure is an error answer too, never a missing one, so a
client's call does not wait for its own timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import socketio
from yarl import URL

from services.gateway.metrics import SOCKET_CONNECTIONS
from services.kit.errors import Unauthorized
from services.kit.live import ADMIN_ROOM, REDIS_CHANNEL, SYNC_REQUEST, user_room
from services.kit.settings import ServiceSettings
from services.kit.tokens import bearer_token, verify_access_token

log = logging.getLogger(__name__)

HttpSession = Callable[[], aiohttp.ClientSession]


def _token_from(environ: dict[str, Any], auth: Any) -> str:
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return str(auth["token"])
    return bearer_token(environ.get("HTTP_AUTHORIZATION"))


def _error_detail(body: bytes) -> str:
    try:
        problem = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "failed"
    detail = problem.get("detail") if isinstance(problem, dict) else None
    return detail if isinstance(detail, str) else "failed"


def create_socket_server(
    settings: ServiceSettings,
    *,
    orders_url: str,
    http: HttpSession,
    allowed_origins: Collection[str] = (),
) -> socketio.AsyncServer:
    """A Socket.IO server whose rooms are fed through Redis by the services.

    `http` gives the pooled HTTP session for `order.sync`; it is a function because the
    session opens with the app's lifespan, after the server is built. A connection whose
    Origin header is not in `allowed_origins` (`*` allows any) is refused; one without an
    Origin header, from a client that is not a browser, is not.

    Browsers apply no CORS rule to WebSockets, so without this check any site could connect
    with a token it got hold of. The check is in the connect handler, not python-engineio's
    `cors_allowed_origins`: that option also writes CORS headers, which the gateway's CORS
    middleware (the one that answers for CORS) would then repeat, and an empty list turns
    the check off.
    """
    allowed = frozenset(allowed_origins)
    server = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=socketio.AsyncRedisManager(settings.redis_url, channel=REDIS_CHANNEL),
        cors_allowed_origins=[],
        ping_interval=20,
        ping_timeout=20,
        logger=False,
        engineio_logger=False,
    )
    orders = orders_url.rstrip("/")

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and origin not in allowed and "*" not in allowed:
            raise socketio.exceptions.ConnectionRefusedError(f"The origin {origin} is not allowed.")
        try:
            token = _token_from(environ, auth)
            principal = verify_access_token(settings, token)
        except Unauthorized as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.detail) from exc
        await server.save_session(sid, {"token": token, "user_id": principal.user_id})
        await server.enter_room(sid, user_room(principal.user_id))
        if principal.is_admin:
            await server.enter_room(sid, ADMIN_ROOM)
        SOCKET_CONNECTIONS.inc()
        log.info("socket connected", extra={"user_id": principal.user_id, "sid": sid})

    async def disconnect(sid: str, reason: Any = None) -> None:
        SOCKET_CONNECTIONS.dec()

    async def sync(sid: str, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("orderId"), str):
            return {"error": "orderId is required"}
        order_id: str = data["orderId"]
        since = data.get("sinceVersion", 0)
        if not isinstance(since, int) or isinstance(since, bool) or since < 0:
            return {"orderId": order_id, "error": "sinceVersion must be a non-negative integer"}
        session = await server.get_session(sid)
        try:
            verify_access_token(settings, session["token"])
        except Unauthorized as exc:
            await server.disconnect(sid)
            return {"orderId": order_id, "error": exc.detail}
        # the id is one path segment, whatever the client put in it
        url = URL(f"{orders}/orders/{quote(order_id, safe='')}/timeline", encoded=True)
        try:
            async with http().get(
                url,
                params={"sinceVersion": since},
                headers={"Authorization": f"Bearer {session['token']}"},
            ) as response:
                body = await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("order.sync: the orders service is unreachable", extra={"error": repr(exc)})
            return {"orderId": order_id, "error": "The orders service is unavailable."}
        if response.status != 200:
            return {"orderId": order_id, "error": _error_detail(body)}
        return {"orderId": order_id, "updates": orjson.loads(body)}

    server.on("connect", connect)
    server.on("disconnect", disconnect)
    server.on(SYNC_REQUEST, sync)
    return server


def listen_for_pushes(server: socketio.AsyncServer) -> None:
    """Subscribe to the pushes on Redis now; call it in the app's running loop."""
    if not server.manager_initialized:
        server.manager_initialized = True
        server.manager.initialize()


async def stop_listening(server: socketio.AsyncServer) -> None:
    """Stop the server's background work and close its Redis subscription."""
    await server.shutdown()
    manager = server.manager
    listener: asyncio.Task[None] | None = getattr(manager, "thread", None)
    if listener is not None:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    if getattr(manager, "redis", None) is not None:
        await manager.redis.aclose()
