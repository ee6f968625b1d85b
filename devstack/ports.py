"""Small helpers about local TCP ports."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on right now (the kernel picks it from the ephemeral range)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def is_listening(port: int, host: str = HOST) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_closed(ports: Iterable[int], timeout: float = 15.0) -> list[int]:
    """Wait until none of `ports` accepts connections; returns those still open at the deadline."""
    deadline = time.monotonic() + timeout
    remaining = [port for port in ports if is_listening(port)]
    while remaining and time.monotonic() < deadline:
        time.sleep(0.1)
        remaining = [port for port in remaining if is_listening(port)]
    return remaining
