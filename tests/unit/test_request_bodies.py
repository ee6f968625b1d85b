"""Every request body of every service, nested models included, refuses unknown fields.

A contract over the apps' routes, so a new endpoint whose body forgets the kit's
`RequestModel` (a misspelt field silently lost) fails here instead of in production.
"""

from __future__ import annotations

import importlib
from typing import Any, get_args

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel

from services.kit.models import RequestModel
from services.registry import SERVICES

APPS = [s.name for s in SERVICES if s.missing() is None and s.name != "gateway"]


def _app(name: str) -> FastAPI:
    main = importlib.import_module(f"services.{name}.main")
    app: FastAPI = main.create_app()
    return app


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
    for route in _app(name).routes:
        if not isinstance(route, APIRoute) or route.body_field is None:
            continue
        for model in _models(route.body_field.field_info.annotation):
            loose += [
                f"{route.path}: {m.__name__}"
                for m in _nested(model)
                if not issubclass(m, RequestModel)
            ]
    assert loose == [], "request bodies that accept unknown fields"


def test_every_written_service_has_routes_checked() -> None:
    assert {"auth", "orders", "inventory", "notifications"} <= set(APPS)
