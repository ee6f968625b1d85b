"""The Socket.IO server for live order updates, served on the gateway's origin at /socket.io/.

A client authenticates with its access token when it connects (`auth={"token": ...}` or an
`Authorization: Bearer` header); without a valid, unrevoked token, or from a browser page whose
origin is not one of the web apps' (CORS_ORIGINS), the connection is refused. The server
puts each connection in its user's room, and admins also in the admin room; there is no handler
that lets a client join a room. Emits come from any process through Redis (see
services.kit.live), so this server can run as several replicas.

A socket lives no longer than its token (`SocketSessions`): when the token expires, or auth
revokes it (a logout, a new role, a deactivated account: auth announces each on
`SESSION_EVENTS_CHANNEL`, which the `session-events` job of every replica hears), the socket is
sent `session.ended` with the reason and disconnected, leaving its rooms; the client refreshes
its token and connects again, into the rooms its new token allows. Disconnecting rather than
moving sockets between rooms keeps one rule, "a socket's rooms are its token's", whatever
changed. When the job (re)subscribes it checks every socket's token against the revocation
markers, so an announcement missed while it was away is caught up.

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
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson
import socketio
from redis.asyncio import Redis
from yarl import URL

from services.gateway.engine import SocketServer
from services.gateway.metrics import SOCKET_CONNECTIONS
from services.gateway.rooms import IndexedRooms
from services.gateway.service import UpstreamClient
from services.kit import http1
from services.kit.changes import ChannelListener
from services.kit.errors import Unauthorized
from services.kit.live import (
    ADMIN_ROOM,
    REDIS_CHANNEL,
    SESSION_ENDED,
    SYNC_REQUEST,
    OrjsonCodec,
    user_room,
)
from services.kit.settings import ServiceSettings
from services.kit.tokens import (
    SESSION_EVENTS_CHANNEL,
    Principal,
    Revocations,
    VerifiedTokens,
    bearer_token,
    family_marker_key,
    user_marker_key,
)

log = logging.getLogger(__name__)

UpstreamClientRef = Callable[[], UpstreamClient]
RevocationsRef = Callable[[], Revocations]


@dataclass(slots=True)
class _Socket:
    principal: Principal
    expiry: asyncio.TimerHandle | None = None


class SocketSessions:
    """Who each of this replica's sockets is, and ending a socket whose token is no longer good.

    A socket is registered before its token's revocation is checked at connect, so an
    announcement that arrives during the check still finds it.
    """

    def __init__(self, server: socketio.AsyncServer, revocations: RevocationsRef) -> None:
        self._server = server
        self._revocations = revocations
        self._sockets: dict[str, _Socket] = {}
        self._by_user: dict[str, set[str]] = {}
        self._ending: set[asyncio.Task[None]] = set()
        self.closed = 0
        """Sessions removed so far: connections closed or refused after they were added."""

    def __len__(self) -> int:
        return len(self._sockets)

    def add(self, sid: str, principal: Principal) -> None:
        entry = _Socket(principal)
        if principal.expires_at is not None:
            delay = max(0.0, (principal.expires_at - datetime.now(UTC)).total_seconds())
            entry.expiry = asyncio.get_running_loop().call_later(
                delay, self._end_later, sid, "expired"
            )
        self._sockets[sid] = entry
        self._by_user.setdefault(principal.user_id, set()).add(sid)

    def remove(self, sid: str) -> None:
        entry = self._sockets.pop(sid, None)
        if entry is None:
            return
        self.closed += 1
        if entry.expiry is not None:
            entry.expiry.cancel()
        sids = self._by_user.get(entry.principal.user_id)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del self._by_user[entry.principal.user_id]

    async def end(self, sid: str, reason: str) -> None:
        """Tell the socket why, then disconnect it (which takes it out of every room)."""
        if sid not in self._sockets:
            return
        self.remove(sid)
        log.info("socket session ended", extra={"sid": sid, "reason": reason})
        await self._server.emit(SESSION_ENDED, {"reason": reason}, to=sid, ignore_queue=True)
        await self._server.disconnect(sid, ignore_queue=True)

    async def apply(self, raw: str | bytes) -> None:
        """Act on one announcement of `SESSION_EVENTS_CHANNEL`."""
        try:
            event = orjson.loads(raw)
            user_id = str(event["userId"])
            family_id = event.get("familyId")
            min_version = event.get("minVersion")
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            log.warning("unreadable session event ignored")
            return
        revocations = self._revocations()
        if isinstance(family_id, str):
            revocations.remember(family_marker_key(family_id), "1")
        elif isinstance(min_version, int):
            revocations.remember(user_marker_key(user_id), str(min_version))
        for sid in list(self._by_user.get(user_id, ())):
            principal = self._sockets[sid].principal
            if (isinstance(family_id, str) and principal.session_id == family_id) or (
                isinstance(min_version, int) and principal.version < min_version
            ):
                await self.end(sid, "revoked")

    async def revalidate_all(self) -> None:
        """Check every socket against the markers in Redis now, skipping the cache."""
        sids = list(self._sockets)
        principals = [self._sockets[sid].principal for sid in sids]
        revoked = await self._revocations().revoked(principals, fresh=True)
        for sid, is_revoked in zip(sids, revoked, strict=True):
            if is_revoked:
                await self.end(sid, "revoked")

    def _end_later(self, sid: str, reason: str) -> None:
        self._spawn(self.end(sid, reason))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)


class SessionEventsListener(ChannelListener):
    """The `session-events` job: hears auth's revocations and ends the sockets they concern.

    A lost Redis connection ends the job with the error; the runtime starts it again, and it
    then revalidates every socket before listening, for what it missed meanwhile.
    """

    def __init__(self, redis: Redis, sessions: SocketSessions) -> None:
        super().__init__(redis, SESSION_EVENTS_CHANNEL)
        self._sessions = sessions

    async def subscribed(self) -> None:
        await self._sessions.revalidate_all()

    async def heard(self, data: Any) -> None:
        await self._sessions.apply(data)


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
    upstream: UpstreamClientRef,
    revocations: RevocationsRef,
    verified_tokens: Callable[[], VerifiedTokens] | None = None,
    allowed_origins: Collection[str] = (),
) -> tuple[socketio.AsyncServer, SocketSessions]:
    """A Socket.IO server whose rooms are fed through Redis by the services, and its sessions.

    `upstream` gives the upstream client for `order.sync`, `revocations` the app's revocation
    markers and `verified_tokens` its verified tokens (without it the server keeps its own);
    they are functions because the app holding them is made after the server. A connection whose
    Origin header is not in `allowed_origins` (`*` allows any) is refused; one without an
    Origin header, from a client that is not a browser, is not.

    Browsers apply no CORS rule to WebSockets, so without this check any site could connect
    with a token it got hold of. The check is in the connect handler, not python-engineio's
    `cors_allowed_origins`: that option also writes CORS headers, which the gateway's CORS
    middleware (the one that answers for CORS) would then repeat, and an empty list turns
    the check off.
    """
    allowed = frozenset(allowed_origins)
    server = SocketServer(
        async_mode="asgi",
        client_manager=IndexedRooms(settings.redis_url, channel=REDIS_CHANNEL, json=OrjsonCodec),
        json=OrjsonCodec,
        cors_allowed_origins=[],
        # Engine.IO's own defaults: a ping every 25 s keeps a connection alive through proxies
        # that close one idle for 30 s or more, and a peer silent for 20 s after it is gone.
        # Each ping and its pong cost the gateway about 0.3 ms of CPU: with 10,000 sockets
        # held idle it spends about a seventh of a core (the bench's socket-scale table).
        ping_interval=25,
        ping_timeout=20,
        logger=False,
        engineio_logger=False,
    )
    orders = orders_url.rstrip("/")
    sessions = SocketSessions(server, revocations)
    # The app's own (kit/web.py), so a token the HTTP side verified is not verified again here.
    own = VerifiedTokens(settings)
    tokens = verified_tokens or (lambda: own)

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and origin not in allowed and "*" not in allowed:
            raise socketio.exceptions.ConnectionRefusedError(f"The origin {origin} is not allowed.")
        try:
            token = _token_from(environ, auth)
            principal = tokens().verify(token)
            sessions.add(sid, principal)
            await revocations().check(principal)
        except Unauthorized as exc:
            sessions.remove(sid)
            raise socketio.exceptions.ConnectionRefusedError(exc.detail) from exc
        await server.save_session(sid, {"token": token, "user_id": principal.user_id})
        await server.enter_room(sid, user_room(principal.user_id))
        if principal.is_admin:
            await server.enter_room(sid, ADMIN_ROOM)
        SOCKET_CONNECTIONS.inc()
        log.info("socket connected", extra={"user_id": principal.user_id, "sid": sid})

    async def disconnect(sid: str, reason: Any = None) -> None:
        sessions.remove(sid)
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
            await revocations().check(tokens().verify(session["token"]))
        except Unauthorized as exc:
            await sessions.end(sid, "revoked")
            return {"orderId": order_id, "error": exc.detail}
        # the id is one path segment, whatever the client put in it
        path = f"{orders}/orders/{quote(order_id, safe='')}/timeline"
        url = URL(path, encoded=True).with_query(sinceVersion=since)
        try:
            answer = await upstream().request(
                "GET", url, [("Authorization", f"Bearer {session['token']}")]
            )
        except (TimeoutError, http1.Http1Error) as exc:
            log.warning("order.sync: the orders service is unreachable", extra={"error": repr(exc)})
            return {"orderId": order_id, "error": "The orders service is unavailable."}
        if answer.status != 200:
            return {"orderId": order_id, "error": _error_detail(answer.body)}
        return {"orderId": order_id, "updates": orjson.loads(answer.body)}

    server.on("connect", connect)
    server.on("disconnect", disconnect)
    server.on(SYNC_REQUEST, sync)
    return server, sessions


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
