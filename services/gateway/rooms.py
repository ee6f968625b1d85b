"""The gateway's Socket.IO client manager: python-socketio's Redis manager with each socket's
rooms kept beside the rooms' members, and a cheaper delivery of the pushes that come from Redis.

python-socketio finds the rooms a socket is in by asking every room of its namespace, on every
disconnect and `get_rooms`. Each socket has a room of its own and one for its user, so with
10,000 connections held a disconnect asks 20,000 rooms, and 10,000 leaving at once (a client
release, a network blip, the end of the socket bench) kept the gateway's core busy for a
minute, every push and request waiting behind them. `IndexedRooms` keeps, per socket, the rooms
it entered, so a disconnect and `get_rooms` visit only those.

Every replica hears every push the services publish on Redis, about seven per order. For each,
python-socketio builds and encodes the packet before it looks for a recipient, walks the whole
payload for binary values (none can come out of a JSON message), and starts a task per
recipient, then waits for them all. `IndexedRooms` delivers a push without a callback or
binary attachments (every push the services send) by looking for this replica's recipients
first, building the packet only if there are any, and handing it to each recipient's queue in
turn: the hand-over does not block (an Engine.IO socket queues what it sends), so tasks buy
nothing. A push with a callback or binary attachments goes python-socketio's own way.

Its subscription reads each message as redis-py's parser hands it over: the default handler of
a pubsub message looks up a logger and formats the whole message into a debug line (logged or
not) for each one, a third of the Redis client's share of the gateway's samples.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet

log = logging.getLogger(__name__)

Room = Hashable | None


async def _message_as_read(response: list[Any]) -> list[Any]:
    """A pubsub message as the parser read it (redis-py's handler for it, without its log)."""
    return response


class IndexedRooms(socketio.AsyncRedisManager):  # type: ignore[misc]
    """An `AsyncRedisManager` whose sockets' rooms are indexed by socket."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rooms_of: dict[tuple[str, str], set[Room]] = {}

    def _redis_connect(self) -> None:
        super()._redis_connect()
        self.pubsub = self.redis.pubsub(
            ignore_subscribe_messages=True, push_handler_func=_message_as_read
        )

    def rooms_held(self) -> int:
        """Sockets with at least one room: what the index holds."""
        return len(self._rooms_of)

    def basic_enter_room(
        self, sid: str, namespace: str, room: Room, eio_sid: str | None = None
    ) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Room) -> None:
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[(namespace, sid)]

    def get_rooms(self, sid: str, namespace: str) -> list[Room]:
        return [room for room in self._rooms_of.get((namespace, sid), ()) if room is not None]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        # python-socketio's own (5.x) with its scan of every room replaced by the index.
        if namespace not in self.rooms:
            return
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            sids = pending.get(namespace)
            if sids is not None and sid in sids:
                sids.remove(sid)
                if not sids:
                    del pending[namespace]

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        # python-socketio's own (5.x) for what it handles differently: callbacks across hosts,
        # binary attachments.
        if message.get("callback") is not None or message.get("binary"):
            await super()._handle_emit(message)
            return
        namespace = message.get("namespace") or "/"
        if namespace not in self.rooms:
            return
        skip = message.get("skip_sid")
        skipped = set(skip) if isinstance(skip, list) else {skip}
        recipients = [
            eio_sid
            for sid, eio_sid in self.get_participants(namespace, message.get("room"))
            if sid not in skipped
        ]
        if not recipients:
            return
        data = message["data"]
        # A list holds the event's arguments (python-socketio's publishing side makes it one).
        arguments = data if isinstance(data, list) else [] if data is None else [data]
        encoded = self.server.packet_class(
            packet.EVENT, namespace=namespace, data=[message["event"], *arguments], binary=False
        ).encode()
        sent = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        for eio_sid in recipients:
            try:
                await self.server._send_eio_packet(eio_sid, sent)
            except Exception:  # one socket closing meanwhile must not cost the others theirs
                log.warning("a push could not be queued for a socket", exc_info=True)
