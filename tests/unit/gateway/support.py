"""The gateway's routes the admission tests send requests to."""

from __future__ import annotations

from services.gateway.routes import Route, match_route


def route(method: str, path: str) -> Route:
    """The route `method` and `path` match (one must)."""
    matched = match_route(method, path)
    assert matched is not None
    return matched


CREATE = route("POST", "/orders")
STATUS = route("PUT", "/orders/6f1c/status")
LOGIN = route("POST", "/auth/login")  # public: no caller to authorize
