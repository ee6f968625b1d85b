"""Another ASGI app mounted on the gateway (Socket.IO) is reached, and the proxy still answers."""

from __future__ import annotations

import httpx
import socketio

from services.gateway.main import create_app
from services.gateway.settings import Settings


async def test_a_socketio_app_mounted_at_socket_io_answers_the_engineio_handshake() -> None:
    app = create_app(Settings())
    server = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=[])
    app.mount("/socket.io", socketio.ASGIApp(server, socketio_path="socket.io"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        handshake = await client.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
        assert handshake.status_code == 200
        assert handshake.text.startswith("0{")
        assert '"sid"' in handshake.text
        assert "x-request-id" in handshake.headers
        # the proxy routes still decide their own paths (no token: 401, before any upstream)
        assert (await client.get("/orders")).status_code == 401
