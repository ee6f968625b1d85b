"""Socket.IO's WebSocket scopes go straight to its app; everything else takes the usual path."""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Scope, Send

from services.gateway.socket_scopes import SocketScopes


class App:
    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(f"{scope['type']} {scope['path']}")


def _dispatch(*scopes: tuple[str, str]) -> tuple[list[str], list[str]]:
    app, sockets = App(), App()
    middleware = SocketScopes(app, sockets, "/socket.io")

    async def receive() -> Message:
        return {}

    async def send(message: Message) -> None:
        return None

    async def run() -> None:
        for kind, path in scopes:
            await middleware({"type": kind, "path": path}, receive, send)

    asyncio.run(run())
    return app.paths, sockets.paths


def test_only_socket_io_websockets_skip_the_app() -> None:
    app, sockets = _dispatch(
        ("websocket", "/socket.io/"),
        ("http", "/socket.io/"),  # long-polling: CORS, request ids and metrics apply
        ("websocket", "/socket.iox/"),
        ("websocket", "/orders"),
        ("lifespan", ""),
    )

    assert sockets == ["websocket /socket.io/"]
    assert app == ["http /socket.io/", "websocket /socket.iox/", "websocket /orders", "lifespan "]
