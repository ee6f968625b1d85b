"""Small helpers about local TCP ports."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterable
from pathlib import Path

HOST = "127.0.0.1"


EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_FREE_PORTS_SPAN = 12_000
NODE_PORTS_START = 30_000  # Kubernetes' NodePort range (30000-32767) is kube-proxy's on a node
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on right now, for a server about to start on it.

    Chosen below the kernel's ephemeral range, never in it: a port the kernel picked for a bind
    to port 0 and gave back may next be given to some client's outgoing connection, and a
    server starting on it a moment later then fails with "address in use" (a test broker did).
    Nor in the NodePort range, which a test node's services take. Ports handed out before by
    this process are not handed out again.
    """
    high = min(_first_ephemeral_port(), NODE_PORTS_START)
    low = max(1024, high - _FREE_PORTS_SPAN)
    for _ in range(1000):
        port = random.randrange(low, high)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {low}-{high - 1}")


def _first_ephemeral_port() -> int:
    try:
        return int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


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
