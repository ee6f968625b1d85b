"""Serving a service app for the fuzz: under uvicorn in a thread with its own event loop.

Schemathesis calls the API synchronously, so each app runs where its lifespan's pools and
clients live: a uvicorn server on a free port in a thread of its own, started and stopped by
a session fixture.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from devstack.ports import free_port

HOST = "127.0.0.1"


class _Server(uvicorn.Server):
    """A server that leaves the signals to the test runner (several run at once)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextmanager
def served(app: FastAPI, *, within: float = 60.0) -> Iterator[str]:
    """Run `app` with its lifespan under uvicorn in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host=HOST, port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, name=f"fuzz-{app.title}", daemon=True)
    thread.start()
    deadline = time.monotonic() + within
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"{app.title} stopped while starting")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"{app.title} did not start within {within}s")
        time.sleep(0.02)
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        if thread.is_alive():
            raise RuntimeError(f"{app.title} did not stop within 30s")
