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


# --- pushes from Redis --------------------------------------------------------------------


class Recorder:
    """Stands in for the server's hand-over of a packet to a socket's queue."""

    def __init__(self, failing: str | None = None) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.failing = failing

    async def __call__(self, eio_sid: str, eio_pkt: Any) -> None:
        if eio_sid == self.failing:
            raise RuntimeError("the socket closed meanwhile")
        self.sent.append((eio_sid, eio_pkt.encode()))


def _push(room: Any, data: Any, **extra: Any) -> dict[str, Any]:
    return {
        "method": "emit",
        "event": "order.updated",
        "data": data,
        "namespace": "/",
        "room": room,
        "skip_sid": None,
        "callback": None,
        "binary": False,
        "host_id": "another-replica",
        **extra,
    }


async def _delivered(manager: IndexedRooms, message: dict[str, Any], *, own: bool) -> list[Any]:
    """What each socket is handed for `message`: by the manager, or by python-socketio's own
    delivery (`own`)."""
    recorder = Recorder()
    manager.server._send_eio_packet = recorder
    if own:
        await socketio.AsyncRedisManager._handle_emit(manager, message)
    else:
        await manager._handle_emit(message)
    return sorted(recorder.sent, key=lambda item: (item[0], repr(item[1])))


async def test_a_push_reaches_each_recipient_as_python_socketio_would_send_it() -> None:
    manager = _manager()
    await _connected(manager, "eio-1", "user:1")
    await _connected(manager, "eio-2", "user:1", "admins")
    await _connected(manager, "eio-3", "admins")
    await _connected(manager, "eio-4", "user:2")
    payload = {"orderId": "o-1", "status": "CONFIRMED", "items": [{"n": 1}], "reason": None}
    for message in (
        _push(["user:1", "admins"], [payload]),
        _push("user:2", [payload]),
        _push("user:1", ["one", 2, None]),
        _push("admins", []),
    ):
        mine = await _delivered(manager, message, own=False)
        assert mine == await _delivered(manager, message, own=True)
        assert mine, "someone is in each of those rooms"
    (sent,) = await _delivered(manager, _push("user:2", [payload]), own=False)
    assert sent[0] == "eio-4"
    assert sent[1].startswith('42["order.updated",{"orderId":"o-1"')


async def test_a_push_skips_the_sockets_it_names_and_builds_nothing_for_nobody() -> None:
    manager = _manager()
    first = await _connected(manager, "eio-1", "user:1")
    await _connected(manager, "eio-2", "user:1")
    skipping = _push("user:1", [{}], skip_sid=[first])
    assert [eio for eio, _ in await _delivered(manager, skipping, own=False)] == ["eio-2"]

    def unexpected(*_: Any, **__: Any) -> Any:
        raise AssertionError("a packet was built for a room nobody here is in")

    manager.server.packet_class = unexpected
    assert await _delivered(manager, _push("user:9", [{}]), own=False) == []


async def test_a_socket_that_fails_does_not_cost_the_others_their_push() -> None:
    manager = _manager()
    await _connected(manager, "eio-1", "user:1")
    await _connected(manager, "eio-2", "user:1")
    await _connected(manager, "eio-3", "user:1")
    recorder = Recorder(failing="eio-2")
    manager.server._send_eio_packet = recorder
    await manager._handle_emit(_push("user:1", [{"a": 1}]))
    assert sorted(eio for eio, _ in recorder.sent) == ["eio-1", "eio-3"]


async def test_binary_pushes_and_callbacks_go_python_socketio_s_way() -> None:
    manager = _manager()
    await _connected(manager, "eio-1", "user:1")
    binary = _push("user:1", [{"_placeholder": True, "num": 0}, "YWJj"], binary=True)
    event, attachment = await _delivered(manager, binary, own=False)
    assert event[1].startswith("451-")  # a binary event with one attachment, which follows it
    assert attachment == ("eio-1", b"abc")
    asked: list[tuple[str, Any]] = []

    async def send_packet(eio_sid: str, pkt: Any) -> None:
        asked.append((eio_sid, pkt.encode()))

    manager.server._send_packet = send_packet
    await manager._handle_emit(_push("user:1", [{}], callback=["user:1", "/", 7]))
    # A packet of its own per recipient: an event carrying the id (1) its acknowledgement will
    # name, which python-socketio maps back to the publishing host's callback.
    assert asked == [("eio-1", '21["order.updated",{}]')]
