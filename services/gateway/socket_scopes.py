"""Socket.IO's WebSocket connections, handed to its app before the rest of the gateway's.

A WebSocket connection's ASGI call lasts as long as the connection, and every middleware and
routing layer it passes stays suspended in it for that long: request context, CORS, the body
limit, exception handling, the router and the mount each keep a coroutine with its frame, and
some a closure. With 10,000 connections held those were a large share of the gateway's objects,
all of which every full garbage collection visits (`python_gc_pause_seconds`), pausing every
connection's pushes for up to seconds, and of its memory per connection. None of those layers
does anything for a WebSocket scope: each passes it on untouched, and the Socket.IO server
checks the origin and the token itself (live.py). So this middleware, the outermost of the
app's own, hands a WebSocket scope under the Socket.IO path straight to the Socket.IO app and
passes everything else on. Socket.IO's HTTP long-polling requests take the usual path, with
their CORS headers, request ids and metrics.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class SocketScopes:
    """ASGI middleware: WebSocket scopes under `path` go to `sockets`, the rest to `app`."""

    def __init__(self, app: ASGIApp, sockets: ASGIApp, path: str) -> None:
        self.app = app
        self.sockets = sockets
        self.prefix = path.rstrip("/") + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"].startswith(self.prefix):
            await self.sockets(scope, receive, send)
            return
        await self.app(scope, receive, send)
