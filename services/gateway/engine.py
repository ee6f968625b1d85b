"""The Engine.IO server under the gateway's Socket.IO: python-engineio's, with a cheaper watch over
its clients.

python-engineio's service task looks at each client once per `ping_timeout` for one whose pongs
stopped (`check_ping_timeout`), to close it, and drops the closed ones from its table. It spreads
the clients evenly over the period by waiting `ping_timeout / clients` between two of them, and
each wait is an `asyncio.wait_for` that makes a task: with 10,000 connections and a 20 s
timeout, 500 tasks and timers a second, a fifth of the gateway's CPU while every connection is
idle. `SweptEngine` looks at the same clients in the same period, in slices once a second
(`SWEEP_SECONDS`), so it makes one timer a second whatever the connection count.

This replaces `engineio.AsyncServer._service_task` as python-engineio 4.x writes it (what it
checks, in what order, and that an unexpected error is logged and the watch goes on);
tests/unit/gateway/test_engine_sweep.py holds it to that and to its cost.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import engineio
import socketio

from services.kit.runtime import wait_event

log = logging.getLogger(__name__)

SWEEP_SECONDS = 1.0
"""How often a slice of the clients is looked at; every client is, once per `ping_timeout`."""


class SweptEngine(engineio.AsyncServer):  # type: ignore[misc]
    sweep_seconds = SWEEP_SECONDS

    async def _service_task(self) -> None:
        self.service_task_event = stopped = asyncio.Event()
        due: list[Any] = []
        while not await wait_event(stopped, self.sweep_seconds):
            if not due:
                due = list(self.sockets.values())  # a new period
            slices = max(self.ping_timeout / self.sweep_seconds, 1.0)
            share = math.ceil(len(self.sockets) / slices) or len(due)
            now, due = due[:share], due[share:]
            try:
                await self._look_at(now)
            except Exception:  # the watch must outlive any one client
                log.exception("socket watch failed on a slice; going on")

    async def _look_at(self, clients: list[Any]) -> None:
        """Drop the closed clients from the table and close those whose pongs stopped."""
        for client in clients:
            if client.closed:
                self.sockets.pop(client.sid, None)
            elif not client.closing:
                await client.check_ping_timeout()


class SocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server on a `SweptEngine`."""

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return SweptEngine
