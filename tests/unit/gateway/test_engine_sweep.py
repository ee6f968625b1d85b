"""The gateway's Engine.IO watch over its clients (gateway/engine.py `SweptEngine`): every
client is looked at once per ping timeout, closed ones leave the table, and the watch costs a
timer per slice, not a task per client."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from services.gateway.engine import SocketServer, SweptEngine


class Client:
    """What the watch reads of an Engine.IO socket."""

    def __init__(self, sid: str, *, closed: bool = False, closing: bool = False) -> None:
        self.sid = sid
        self.closed = closed
        self.closing = closing
        self.checks = 0

    async def check_ping_timeout(self) -> bool:
        self.checks += 1
        return True


def engine(clients: list[Client], *, ping_timeout: float, sweep: float) -> SweptEngine:
    server = SweptEngine(async_mode="asgi", ping_timeout=ping_timeout)
    server.sweep_seconds = sweep
    server.sockets = {client.sid: client for client in clients}
    return server


async def watch_for(server: SweptEngine, seconds: float) -> None:
    task = asyncio.create_task(server._service_task())
    await asyncio.sleep(seconds)
    server.service_task_event.set()
    async with asyncio.timeout(1):
        await task


def test_socket_io_runs_on_the_swept_engine() -> None:
    assert isinstance(SocketServer(async_mode="asgi").eio, SweptEngine)
    assert not isinstance(socketio.AsyncServer(async_mode="asgi").eio, SweptEngine)


async def test_every_open_client_is_looked_at_within_a_ping_timeout() -> None:
    open_ = [Client(f"open-{n}") for n in range(95)]
    closing = Client("closing", closing=True)
    closed = [Client(f"closed-{n}", closed=True) for n in range(5)]
    server = engine([*open_, closing, *closed], ping_timeout=0.2, sweep=0.01)

    await watch_for(server, 0.35)

    assert all(client.checks >= 1 for client in open_)
    assert closing.checks == 0
    assert all(client.checks == 0 for client in closed)
    assert set(server.sockets) == {client.sid for client in [*open_, closing]}


async def test_a_failing_client_does_not_stop_the_watch() -> None:
    class Broken(Client):
        async def check_ping_timeout(self) -> bool:
            raise RuntimeError("socket in a bad state")

    later = Client("later")
    server = engine([Broken("broken"), later], ping_timeout=0.02, sweep=0.01)

    await watch_for(server, 0.2)

    assert later.checks >= 2


async def test_the_watch_makes_no_task_per_client() -> None:
    # python-engineio's own watch makes a task per client per period (an asyncio.wait_for
    # between two clients): 2,000 here.
    clients = [Client(f"c-{n}") for n in range(2000)]
    server = engine(clients, ping_timeout=0.1, sweep=0.01)
    loop = asyncio.get_running_loop()
    made = 0

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> asyncio.Task[Any]:
        nonlocal made
        made += 1
        return asyncio.Task(coro, loop=loop, **options)

    loop.set_task_factory(counting)
    try:
        await watch_for(server, 0.15)
    finally:
        loop.set_task_factory(None)

    assert all(client.checks >= 1 for client in clients)
    assert made < 100


async def test_shutdown_ends_the_watch_between_slices() -> None:
    server = engine([Client("a")], ping_timeout=20, sweep=60)
    task = asyncio.create_task(server._service_task())
    await asyncio.sleep(0.01)
    server.service_task_event.set()
    async with asyncio.timeout(1):
        await task
