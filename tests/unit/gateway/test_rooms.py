"""The gateway's Socket.IO manager keeps each socket's rooms, so a disconnect visits only those."""

from __future__ import annotations

from typing import Any

import socketio

from services.gateway.rooms import IndexedRooms

NAMESPACE = "/"


class Untouchable(dict[str, str]):
    """A room that fails the test if anything asks who is in it."""

    def __contains__(self, key: object) -> bool:
        raise AssertionError("a disconnect looked into another socket's room")


def _manager() -> IndexedRooms:
    manager = IndexedRooms("redis://127.0.0.1:1/0", channel="test")
    socketio.AsyncServer(async_mode="asgi", client_manager=manager)
    return manager


async def _connected(manager: IndexedRooms, eio_sid: str, *rooms: Any) -> str:
    sid: str = await manager.connect(eio_sid, NAMESPACE)
    for room in rooms:
        await manager.enter_room(sid, NAMESPACE, room)
    return sid


async def test_a_socket_s_rooms_are_its_own_room_and_those_it_entered() -> None:
    manager = _manager()
    first = await _connected(manager, "eio-1", "user:1")
    second = await _connected(manager, "eio-2", "user:1", "admins")

    assert set(manager.get_rooms(first, NAMESPACE)) == {first, "user:1"}
    assert set(manager.get_rooms(second, NAMESPACE)) == {second, "user:1", "admins"}
    await manager.leave_room(second, NAMESPACE, "admins")
    assert set(manager.get_rooms(second, NAMESPACE)) == {second, "user:1"}


async def test_a_disconnect_leaves_every_room_of_the_socket_and_no_other() -> None:
    manager = _manager()
    first = await _connected(manager, "eio-1", "user:1")
    second = await _connected(manager, "eio-2", "user:1", "admins")
    manager.rooms[NAMESPACE][first] = Untouchable(manager.rooms[NAMESPACE][first])

    await manager.disconnect(second, NAMESPACE)

    assert manager.get_rooms(second, NAMESPACE) == []
    assert not manager.is_connected(second, NAMESPACE)
    assert "admins" not in manager.rooms[NAMESPACE], "its last member left"
    assert second not in manager.rooms[NAMESPACE], "its own room is gone"
    assert [sid for sid, _ in manager.get_participants(NAMESPACE, "user:1")] == [first]
    assert manager.is_connected(first, NAMESPACE)
    assert manager.rooms_held() == 1


async def test_closing_a_room_and_disconnecting_everyone_leave_nothing_indexed() -> None:
    manager = _manager()
    sids = [await _connected(manager, f"eio-{n}", "user:1", "admins") for n in range(3)]

    await manager.close_room("admins", NAMESPACE)
    assert all("admins" not in manager.get_rooms(sid, NAMESPACE) for sid in sids)
    for sid in sids:
        await manager.disconnect(sid, NAMESPACE)

    assert manager.rooms_held() == 0
    assert NAMESPACE not in manager.rooms
