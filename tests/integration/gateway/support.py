"""Servers for the gateway's integration tests: ASGI apps under uvicorn on free ports."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp

from services.gateway.settings import Settings
from services.kit.tokens import Principal
from tests.signing import sign, token_env


def gateway_settings(redis_url: str, orders_url: str, **values: Any) -> Settings:
    """A test gateway's settings, with `orders_url` as its orders service."""
    return Settings(
        **token_env(), APP_ENV="test", REDIS_URL=redis_url, ORDER_SERVICE_URL=orders_url, **values
    )


def bearer(settings: Settings, user_id: str) -> dict[str, str]:
    """The Authorization header of a customer `user_id`, signed for `settings`."""
    principal = Principal(user_id=user_id, email=f"{user_id}@example.com", role="USER")
    return {"Authorization": f"Bearer {sign(settings, principal)}"}


def metric_value(base: str, name: str, **labels: str) -> float:
    """The first sample `name` on `base`'s /metrics whose labels include `labels`; 0 without one."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    return 0.0


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class UvicornThread:
    """An ASGI app served by uvicorn in a background thread (its own event loop), free port."""

    def __init__(self, app: ASGIApp, *, proxy_headers: bool = True) -> None:
        self.sock = listening_socket()
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", proxy_headers=proxy_headers
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
