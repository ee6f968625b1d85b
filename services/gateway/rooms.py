"""The gateway's Socket.IO client manager: python-socketio's Redis manager with each socket's
rooms kept beside the rooms' members.

python-socketio finds the rooms a socket is in by asking every room of its namespace, on every
disconnect and `get_rooms`. Each socket has a room of its own and one for its user, so with
10,000 connections held a disconnect asks 20,000 rooms, and 10,000 leaving at once (a client
release, a network blip, the end of the socket bench) kept the gateway's core busy for a
minute, every push and request waiting behind them. `IndexedRooms` keeps, per socket, the rooms
it entered, so a disconnect and `get_rooms` visit only those.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import socketio

Room = Hashable | None


class IndexedRooms(socketio.AsyncRedisManager):  # type: ignore[misc]
    """An `AsyncRedisManager` whose sockets' rooms are indexed by socket."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rooms_of: dict[tuple[str, str], set[Room]] = {}

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
