"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.unit.http_servers import Serve, Tls, self_signed, serving


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Starts small HTTP servers on free local ports (tests/unit/http_servers.py)."""
    async for start in serving():
        yield start


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A self-signed certificate for 127.0.0.1, with the contexts that serve and trust it."""
    return self_signed(tmp_path_factory.mktemp("tls"))
