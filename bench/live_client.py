"""The load generator's Socket.IO client for its customers: the pushes of every order it places
read straight off one WebSocket.

The generator shares the two cores with the stack it measures, so what it spends per push is CPU
the stack does not get. python-socketio's client took 28 µs of the generator's CPU per push
received (3,000 pushes to one user through Redis and the gateway), starting a task for every
message; this one reads each frame and calls the event's handler in place
(docs/benchmarks-analysis.md). It speaks what the gateway's server does with a customer: Engine.IO
4 over a WebSocket only, the default namespace, text events without acknowledgements or binary
attachments, and it answers the server's pings. The socket-scale run keeps python-socketio's
client, as a browser's stand-in.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
import orjson

_EVENT = "42"
_CONNECTED = "40"
_REFUSED = "44"
_DISCONNECTED = "41"
_PING, _PONG = "2", "3"
_OPEN, _CLOSE = "0", "1"
CONNECT_SECONDS = 10.0


class PushClient(Protocol):
    """What a run needs of a customer's live connection (this client or python-socketio's)."""

    connected: bool

    def on(self, event: str, handler: Callable[..., Any]) -> Any: ...

    async def disconnect(self) -> None: ...


class LiveClient:
    """One customer's live connection; `on(event, handler)` calls `handler(*arguments)` for each
    push of `event`, and the `disconnect` handler once when the connection ends."""

    def __init__(self) -> None:
        self.connected = False
        self.handlers: dict[str, Callable[..., Any]] = {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        self.handlers[event] = handler

    def off(self, event: str) -> None:
        self.handlers.pop(event, None)

    async def connect(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        """Open the WebSocket under `base` (an http:// URL) and join with `token`, within
        CONNECT_SECONDS; raises ConnectionRefusedError if the server refuses the token."""
        url = "ws" + base.removeprefix("http").rstrip("/") + "/socket.io/?EIO=4&transport=websocket"
        async with asyncio.timeout(CONNECT_SECONDS):
            ws = self._ws = await session.ws_connect(url, autoping=True, max_msg_size=0)
            opened = await ws.receive_str()
            if not opened.startswith(_OPEN):
                raise ConnectionError(f"not an Engine.IO server: {opened[:80]!r}")
            await ws.send_str(_CONNECTED + orjson.dumps({"token": token}).decode())
            while True:
                message = await ws.receive_str()
                if message == _PING:
                    await ws.send_str(_PONG)
                elif message.startswith(_CONNECTED):
                    break
                elif message.startswith(_REFUSED):
                    await ws.close()
                    raise ConnectionRefusedError(message[len(_REFUSED) :])
        self.connected = True
        self._reader = asyncio.create_task(self._read(ws))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for frame in ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    break
                message: str = frame.data
                if message.startswith(_EVENT):
                    # An acknowledgement id, which the gateway's pushes never carry, would
                    # sit between the type and the arguments.
                    event, *arguments = orjson.loads(message[len(_EVENT) :].lstrip("0123456789"))
                    handler = self.handlers.get(event)
                    if handler is not None:
                        handler(*arguments)
                elif message == _PING:
                    await ws.send_str(_PONG)
                elif message.startswith((_DISCONNECTED, _CLOSE)):
                    break
        finally:
            self.connected = False
            with contextlib.suppress(Exception):
                await ws.close()
            ended = self.handlers.get("disconnect")
            if ended is not None:
                ended()

    async def disconnect(self) -> None:
        """Leave and close; the `disconnect` handler runs."""
        ws, reader = self._ws, self._reader
        if ws is not None and not ws.closed:
            with contextlib.suppress(ConnectionError):
                await ws.send_str(_DISCONNECTED)
            await ws.close()
        if reader is not None:
            await reader
