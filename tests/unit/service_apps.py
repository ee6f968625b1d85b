"""The FastAPI apps of the written services (the gateway has its own tests), and their routes as
FastAPI serves them, for the contracts checked over every route."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from services.registry import SERVICES

APPS = [s.name for s in SERVICES if s.missing() is None and s.name != "gateway"]


@dataclass(frozen=True)
class ServedRoute:
    path: str
    dependant: Dependant
    body_field: Any


def service_app(name: str) -> FastAPI:
    main = importlib.import_module(f"services.{name}.main")
    app: FastAPI = main.create_app()
    return app


def served_routes(app: FastAPI) -> Iterator[ServedRoute]:
    """Every API route: the app's own and those of its included routers. FastAPI keeps an
    included router as one entry whose routes, with the include's prefix and dependencies,
    come from `effective_route_contexts`."""
    for route in app.routes:
        if isinstance(route, APIRoute):
            yield ServedRoute(route.path, route.dependant, route.body_field)
        included = getattr(route, "effective_route_contexts", None)
        if included is None:
            continue
        for context in included():
            if context.dependant is not None:
                yield ServedRoute(context.path, context.dependant, context.body_field)
