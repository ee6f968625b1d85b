"""The Socket.IO server for live order updates, served on the gateway's origin at /socket.io/.

A client authenticates with its access token when it connects (`auth={"token": ...}` or an
`Authorization: Bearer` header); without a valid token the connection is refused. The server
puts each connection in its user's room, and admins also in the admin room; there is no handler
that lets a client join a room. Emits come from any process through Redis (see
services.kit.live), so this server can run as several replicas.

A client that reconnects asks for what it missed with `order.sync` {orderId, sinceVersion}; the
server fetches the order's timeline from the orders service with the client's own token, so the
orders service decides what the caller may see.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import socketio

from services.kit.errors import Unauthorized
from services.kit.live import ADMIN_ROOM, REDIS_CHANNEL, SYNC_REQUEST, user_room
from services.kit.settings import ServiceSettings
from services.kit.tokens import bearer_token, verify_access_token

log = logging.getLogger(__name__)


def _token_from(environ: dict[str, Any], auth: Any) -> str:
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return str(auth["token"])
    return bearer_token(environ.get("HTTP_AUTHORIZATION"))


def create_socket_server(
    settings: ServiceSettings,
    *,
    orders_url: str,
    http: httpx.AsyncClient,
    cors_origins: list[str] | str = "*",
) -> socketio.AsyncServer:
    """A Socket.IO server whose rooms are fed through Redis by the services."""
    server = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=socketio.AsyncRedisManager(settings.redis_url, channel=REDIS_CHANNEL),
        cors_allowed_origins=cors_origins,
        ping_interval=20,
        ping_timeout=20,
        logger=False,
        engineio_logger=False,
    )

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        try:
            token = _token_from(environ, auth)
            principal = verify_access_token(settings, token)
        except Unauthorized as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.detail) from exc
        await server.save_session(sid, {"token": token, "user_id": principal.user_id})
        await server.enter_room(sid, user_room(principal.user_id))
        if principal.is_admin:
            await server.enter_room(sid, ADMIN_ROOM)
        log.info("socket connected", extra={"user_id": principal.user_id, "sid": sid})

    async def sync(sid: str, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("orderId"), str):
            return {"error": "orderId is required"}
        since = data.get("sinceVersion", 0)
        if not isinstance(since, int) or since < 0:
            return {"error": "sinceVersion must be a non-negative integer"}
        session = await server.get_session(sid)
        try:
            verify_access_token(settings, session["token"])
        except Unauthorized as exc:
            await server.disconnect(sid)
            return {"error": exc.detail}
        response = await http.get(
            f"{orders_url}/orders/{data['orderId']}/timeline",
            params={"sinceVersion": since},
            headers={"Authorization": f"Bearer {session['token']}"},
        )
        if response.status_code != 200:
            return {"orderId": data["orderId"], "error": response.json().get("detail", "failed")}
        return {"orderId": data["orderId"], "updates": response.json()}

    server.on("connect", connect)
    server.on(SYNC_REQUEST, sync)
    return server
