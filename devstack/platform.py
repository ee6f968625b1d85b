"""The platform's services as `make up` runs them: names, ports and their environment.

Adding a service to the local stack is one line in `SERVICES`; a service whose package does not
exist yet is skipped with a message, so the list can name services before they are written.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    name: str
    default_port: int
    url_variable: str | None
    """The gateway's variable holding this service's base URL (the seed's names)."""

    @property
    def port_variable(self) -> str:
        return f"{self.name.upper()}_PORT"

    def port(self, environ: Mapping[str, str] = os.environ) -> int:
        return int(environ.get(self.port_variable, self.default_port))

    def missing(self) -> str | None:
        """Why the service cannot run yet (its package is not written), or None when it can."""
        try:
            found = importlib.util.find_spec(f"services.{self.name}.main") is not None
        except ModuleNotFoundError:
            found = False
        # `realtimeorder serve` runs every services/<name>/ that has a main module.
        return None if found else f"services/{self.name}/main.py does not exist yet"


SERVICES = (
    Service("gateway", 3000, None),
    Service("auth", 3001, "AUTH_SERVICE_URL"),
    Service("orders", 3002, "ORDER_SERVICE_URL"),
    Service("inventory", 3003, "INVENTORY_SERVICE_URL"),
    Service("notifications", 3004, "NOTIFICATION_SERVICE_URL"),
    Service("analytics", 3005, "ANALYTICS_SERVICE_URL"),
)
