"""The platform's services: the one list that `make up`, the gateway and the chart tests read.

Each entry names a package under services/, the port it listens on by default (its PORT, the
seed's numbering) and the variable through which the gateway finds it (the seed's names, such as
ORDER_SERVICE_URL). The gateway proxies to every service that has such a variable; `make up`
and `realtimeorder serve` run every service whose package is written; the chart tests check
that the chart deploys each of those on the same port.

A service can be listed before its package exists: it is then skipped, with the reason.

This module is not a service and imports none: every service may read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SERVICES_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Service:
    name: str
    """Its package under services/, its `realtimeorder serve` name and its chart component."""
    default_port: int
    url_variable: str | None
    """The gateway's variable holding this service's base URL; None for the gateway itself."""

    @property
    def local_url(self) -> str:
        """Where it answers on this machine by default: the gateway's default upstream URL."""
        return f"http://127.0.0.1:{self.default_port}"

    def missing(self) -> str | None:
        """Why the service cannot run yet (its package is not written), or None when it can."""
        if (SERVICES_DIR / self.name / "main.py").is_file():
            return None
        return f"services/{self.name}/main.py does not exist yet"


SERVICES: tuple[Service, ...] = (
    Service("gateway", 3000, None),
    Service("auth", 3001, "AUTH_SERVICE_URL"),
    Service("orders", 3002, "ORDER_SERVICE_URL"),
    Service("inventory", 3003, "INVENTORY_SERVICE_URL"),
    Service("notifications", 3004, "NOTIFICATION_SERVICE_URL"),
    Service("analytics", 3005, "ANALYTICS_SERVICE_URL"),
)

UPSTREAMS: tuple[Service, ...] = tuple(s for s in SERVICES if s.url_variable is not None)
"""The services the gateway proxies to, whether written yet or not (it answers 502 until then)."""


def service(name: str) -> Service:
    """The registry entry called `name`; KeyError names the known services."""
    for entry in SERVICES:
        if entry.name == name:
            return entry
    known = ", ".join(entry.name for entry in SERVICES)
    raise KeyError(f"{name!r} is not in services/registry.py ({known})")


def runnable() -> tuple[str, ...]:
    """The names of the services whose package is written: what `make up` and `serve` run."""
    return tuple(s.name for s in SERVICES if s.missing() is None)
