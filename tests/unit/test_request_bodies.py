"""Every request body of every service, nested models included, refuses unknown fields.

A contract over the apps' routes, so a new endpoint whose body forgets the kit's
`RequestModel` (a misspelt field silently lost) fails here instead of in production.
"""

from __future__ import annotations

from typing import Any, get_args

import pytest
from pydantic import BaseModel

from services.kit.models import RequestModel
from tests.unit.service_apps import APPS, served_routes, service_app


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models(arg)]


def _nested(model: type[BaseModel]) -> list[type[BaseModel]]:
    found = [model]
    for field in model.model_fields.values():
        for inner in _models(field.annotation):
            found += _nested(inner)
    return found


@pytest.mark.parametrize("name", APPS)
def test_every_request_body_is_a_request_model(name: str) -> None:
    loose = []
    bodies = [r for r in served_routes(service_app(name)) if r.body_field is not None]
    for route in bodies:
        for model in _models(route.body_field.field_info.annotation):
            loose += [
                f"{route.path}: {m.__name__}"
                for m in _nested(model)
                if not issubclass(m, RequestModel)
            ]
    if name != "analytics":  # its reports take no body
        assert bodies
    assert loose == [], "request bodies that accept unknown fields"


def test_every_written_service_has_routes_checked() -> None:
    assert {"auth", "orders", "inventory", "notifications"} <= set(APPS)
