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

from datetime import datetime
from typing import Any

import orjson
import socketio
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from services.kit import tracing

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


def create_emitter(redis_url: str) -> socketio.AsyncRedisManager:
    """A write-only manager that emits to the gateway's Socket.IO clients through Redis."""
    return socketio.AsyncRedisManager(
        redis_url, channel=REDIS_CHANNEL, write_only=True, json=OrjsonCodec
    )


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
