"""Live order updates over Socket.IO: rooms, event names and the pushed payload.

The Socket.IO server runs in the gateway; any process (a Kafka consumer in the orders service,
say) emits through Redis with `create_emitter`, so pushes work across processes and replicas.
Each connection sits in its user's room, and admins also in the admin room; clients cannot
join rooms themselves. The notifications service pushes its in-app notifications to the
user's room the same way (`NOTIFICATION_CREATED`, `NOTIFICATION_UNREAD`, `push_to_user`).

A push runs as an after-commit effect, inside that effect's span when tracing is on
(kit/after_commit.py), and names the Socket.IO event and rooms on it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import orjson
import socketio
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from services.kit import tracing
from services.kit.metrics import LIVE_PUSHES, labelled

log = logging.getLogger(__name__)

ADMIN_ROOM = "admins"
ORDER_UPDATED = "order.updated"
SYNC_REQUEST = "order.sync"
SESSION_ENDED = "session.ended"
"""Sent to a socket just before the gateway disconnects it because its access token expired
(`{"reason": "expired"}`) or was revoked (`{"reason": "revoked"}`: a logout, a new role, a
deactivated account); the client refreshes its token and connects again."""
REDIS_CHANNEL = "realtimeorder-socketio"


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


class OrderUpdate(BaseModel):
    """What a client receives on `order.updated`."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    order_id: str
    user_id: str
    status: str
    version: int
    time: datetime
    reason: str | None = None


class OrjsonCodec:
    """The JSON module python-socketio and python-engineio are given (their `json=`): orjson.

    Every push is encoded twice with it, into the Redis message and into the Socket.IO packet
    the gateway sends; with the standard library's encoder that was the gateway's largest own
    cost while pushing (a profile under the benchmark). Payloads are JSON-ready dictionaries
    (`model_dump(mode="json")`), which both encoders write alike.
    """

    @staticmethod
    def dumps(obj: Any, **_options: Any) -> str:
        # The libraries pass the standard library's options (separators); orjson's output is
        # already the compact form they ask for.
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(raw: str | bytes, **_options: Any) -> Any:
        return orjson.loads(raw)


class PipelinedEmitter(socketio.AsyncRedisManager):  # type: ignore[misc]
    """A write-only manager whose emits go to Redis together: the messages emitted while a
    round trip is out are published in the next one, in one pipeline.

    An emit only queues its message and returns. One flusher task at a time publishes what is
    queued, in the order it was emitted (one pipeline on one connection keeps it), and again
    until nothing is: an after-commit runner with several pushes waiting sends them in one
    round trip instead of one each, and its next effect does not wait on Redis. A round trip
    that fails is tried once more on a new connection (one that timed out is not), then its
    messages are dropped, logged and counted, as the library's own publish gives up after two
    attempts (a lost push is recovered by the client's `order.sync`). At most `capacity`
    messages wait; an emit past that is dropped and counted. Metric:
    `live_pushes_total{outcome}` (published, failed, dropped).
    """

    connected: bool
    redis: Any

    def __init__(self, redis_url: str, *, capacity: int = 10_000, timeout: float = 2.0) -> None:
        super().__init__(redis_url, channel=REDIS_CHANNEL, write_only=True, json=OrjsonCodec)
        self.capacity = capacity
        self.timeout = timeout
        self._queued: list[str] = []
        self._flusher: asyncio.Task[None] | None = None
        for outcome in ("published", "failed", "dropped"):
            LIVE_PUSHES.labels(outcome)

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: str | list[str] | None = None,
        skip_sid: str | list[str] | None = None,
        callback: Any = None,
        to: str | list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """The library's emit, without its pass over the data for binary parts and its local
        delivery (a write-only manager has no clients of its own): the same message, whose
        encoding refuses bytes, and then the library's own emit encodes them."""
        if callback is not None or kwargs:
            await super().emit(event, data, namespace, room, skip_sid, callback, to, **kwargs)
            return
        message = {
            "method": "emit",
            "event": event,
            "data": list(data) if isinstance(data, tuple) else [data],
            "binary": False,
            "namespace": namespace or "/",
            "room": to or room,
            "skip_sid": skip_sid,
            "callback": None,
            "host_id": self.host_id,
        }
        try:
            encoded = self.json.dumps(message)
        except TypeError:  # bytes in the data: sent as the library's binary attachments
            await super().emit(event, data, namespace, room, skip_sid, None, to)
            return
        self._queue(encoded)

    async def _publish(self, data: Any) -> None:
        self._queue(self.json.dumps(data))

    def _queue(self, encoded: str) -> None:
        if len(self._queued) >= self.capacity:
            LIVE_PUSHES.labels("dropped").inc()
            log.warning("live push queue full; push dropped")
            return
        self._queued.append(encoded)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())

    async def drained(self) -> None:
        """Wait until every message emitted so far was published or given up."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def close(self) -> None:
        """Publish what is queued (within the time limit per round trip), then disconnect."""
        await self.drained()
        if self.redis is not None:
            await self.redis.aclose()

    async def _flush(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                await self._publish_all(batch)
        finally:
            self._flusher = None

    async def _publish_all(self, batch: list[str]) -> None:
        for attempt in (1, 2):
            try:
                if not self.connected:
                    self._redis_connect()
                async with asyncio.timeout(self.timeout):
                    if len(batch) == 1:  # a pipeline costs more than the command alone
                        await self.redis.publish(self.channel, batch[0])
                    else:
                        async with self.redis.pipeline(transaction=False) as pipe:
                            for message in batch:
                                pipe.publish(self.channel, message)
                            await pipe.execute()
            except Exception as exc:  # Redis down or slow: the changes stay, the pushes go
                self.connected = False
                # A connection that failed is tried again at once; a Redis that does not
                # answer in time is not waited for twice while pushes queue up behind it.
                if attempt == 2 or isinstance(exc, TimeoutError):
                    LIVE_PUSHES.labels("failed").inc(len(batch))
                    log.error(
                        "live pushes not published",
                        extra={"pushes": len(batch), "error": repr(exc)},
                    )
                    return
            else:
                labelled(LIVE_PUSHES, "published").inc(len(batch))
                return


def create_emitter(redis_url: str, *, timeout: float = 2.0) -> PipelinedEmitter:
    """A write-only manager that emits to the gateway's Socket.IO clients through Redis, a round
    trip given up after `timeout` seconds."""
    return PipelinedEmitter(redis_url, timeout=timeout)


async def push_order_update(emitter: socketio.AsyncRedisManager, update: OrderUpdate) -> None:
    """Send `update` to the order's owner and to the admins."""
    payload = update.model_dump(mode="json", by_alias=True)
    rooms = [user_room(update.user_id), ADMIN_ROOM]
    _traced(ORDER_UPDATED, rooms, update.order_id)
    await emitter.emit(ORDER_UPDATED, payload, room=rooms)


def _traced(event: str, rooms: list[str], order_id: str | None = None) -> None:
    attributes = {
        "messaging.system": "socket.io",
        "messaging.operation.type": "send",
        "messaging.destination.name": event,
        "socketio.rooms": ",".join(rooms),
    }
    if order_id is not None:
        attributes["realtimeorder.order_id"] = order_id
    tracing.set_attributes(attributes)


# --- the in-app notification center (services/notifications) ------------------------------

NOTIFICATION_CREATED = "notification.created"
"""Sent to the user's room with the new notification, as `GET /notifications` lists it, and
the user's `unreadCount` with it."""
NOTIFICATION_UNREAD = "notification.unread"
"""Sent to the user's room with `{"unreadCount": n}` after notifications were read."""


async def push_to_user(
    emitter: socketio.AsyncRedisManager, user_id: str, event: str, payload: dict[str, Any]
) -> None:
    """Send `event` with `payload` (already JSON-ready, camelCase) to one user's room only."""
    _traced(event, [user_room(user_id)])
    await emitter.emit(event, payload, room=user_room(user_id))
