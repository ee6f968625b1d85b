"""The platform's services as `make up` runs them: their ports on this machine.

The services are listed once, in `services/registry.py`; a service added there joins the local
stack. One whose package does not exist yet is skipped with a message, so the registry can name
services before they are written. Each service's port follows `<NAME>_PORT` (AUTH_PORT=13001),
and its default is the registry's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from services.registry import Service


def port_variable(service: Service) -> str:
    return f"{service.name.upper()}_PORT"


def service_port(service: Service, environ: Mapping[str, str] = os.environ) -> int:
    return int(environ.get(port_variable(service), service.default_port))
