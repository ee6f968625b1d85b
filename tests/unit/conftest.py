"""Fixtures shared by the unit tests."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import pytest

from tests.unit.http_servers import HOST, Handler, Serve, Server, Tls, self_signed


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Starts small HTTP servers on free local ports (tests/unit/http_servers.py), closed at the
    end."""
    servers: list[Server] = []

    async def start(handler: Handler, tls: ssl.SSLContext | None = None) -> Server:
        server = Server(handler)
        server.server = await asyncio.start_server(server._accept, HOST, 0, ssl=tls)
        servers.append(server)
        return server

    yield start
    for server in servers:
        assert server.server is not None
        server.server.close()


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A self-signed certificate for 127.0.0.1, with the contexts that serve and trust it."""
    return self_signed(tmp_path_factory.mktemp("tls"))
