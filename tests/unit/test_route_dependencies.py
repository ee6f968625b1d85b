"""Every endpoint and every dependency of every service is a coroutine function.

FastAPI runs a plain `def` endpoint or dependency on a worker thread: for a one-line lookup
like `request.app.state.orders` that is a thread hop on every request (a queue put, a wake-up
and a callback back into the loop), which once cost the order create path more than the lookup
itself. A new `def` dependency fails here instead of in a profile.
"""

from __future__ import annotations

import inspect

import pytest
from fastapi.dependencies.models import Dependant

from tests.unit.service_apps import APPS, served_routes, service_app


def _sync_calls(dependant: Dependant, path: str) -> list[str]:
    found = []
    call = dependant.call
    if call is not None and not inspect.iscoroutinefunction(call):
        found.append(f"{path}: {getattr(call, '__qualname__', call)}")
    for inner in dependant.dependencies:
        found += _sync_calls(inner, path)
    return found


@pytest.mark.parametrize("name", APPS)
def test_every_endpoint_and_dependency_runs_on_the_event_loop(name: str) -> None:
    threaded = []
    routes = list(served_routes(service_app(name)))
    for route in routes:
        threaded += _sync_calls(route.dependant, route.path)
    assert any(r.dependant.dependencies for r in routes), "routes with dependencies were seen"
    assert threaded == [], "these run on FastAPI's threadpool on every request"
