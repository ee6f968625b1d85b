"""The routing table decides the upstream and the access policy of every path."""

from __future__ import annotations

import pytest

from services.gateway.routes import (
    ROUTES,
    UPSTREAM_NAMES,
    Policy,
    Route,
    has_dot_segments,
    match_route,
    service_prefixes,
)


@pytest.mark.parametrize(
    ("method", "path", "upstream", "policy"),
    [
        ("POST", "/auth/register", "auth", Policy.PUBLIC),
        ("POST", "/auth/login", "auth", Policy.PUBLIC),
        ("POST", "/auth/refresh", "auth", Policy.PUBLIC),
        ("POST", "/auth/logout", "auth", Policy.PUBLIC),
        ("GET", "/auth/verify", "auth", Policy.SIGNED_IN),
        ("GET", "/auth/users", "auth", Policy.ADMIN),
        ("PATCH", "/auth/users/42/role", "auth", Policy.ADMIN),
        ("GET", "/orders", "orders", Policy.SIGNED_IN),
        ("POST", "/orders", "orders", Policy.SIGNED_IN),
        ("POST", "/orders/create", "orders", Policy.SIGNED_IN),
        ("GET", "/orders/42", "orders", Policy.SIGNED_IN),
        ("POST", "/orders/42/cancel", "orders", Policy.SIGNED_IN),
        ("PUT", "/orders/42/status", "orders", Policy.ADMIN),
        ("GET", "/inventory/products", "inventory", Policy.PUBLIC),
        ("HEAD", "/inventory/products", "inventory", Policy.PUBLIC),
        ("GET", "/inventory/products/p-1", "inventory", Policy.PUBLIC),
        ("GET", "/inventory/stock/p-1", "inventory", Policy.PUBLIC),
        ("POST", "/inventory/products", "inventory", Policy.ADMIN),
        ("PATCH", "/inventory/products/p-1", "inventory", Policy.ADMIN),
        ("PUT", "/inventory/stock/p-1", "inventory", Policy.ADMIN),
        ("GET", "/inventory/products/p-1/history", "inventory", Policy.SIGNED_IN),
        ("GET", "/notifications", "notifications", Policy.SIGNED_IN),
        ("GET", "/notifications/unread", "notifications", Policy.SIGNED_IN),
        ("GET", "/notifications/preferences", "notifications", Policy.SIGNED_IN),
        ("PUT", "/notifications/preferences", "notifications", Policy.SIGNED_IN),
        ("POST", "/notifications/42/read", "notifications", Policy.SIGNED_IN),
        ("POST", "/notifications/read-all", "notifications", Policy.SIGNED_IN),
        ("GET", "/notifications/orders/42", "notifications", Policy.ADMIN),
        ("GET", "/notifications/orders", "notifications", Policy.ADMIN),
        ("GET", "/notifications/ordersx", "notifications", Policy.SIGNED_IN),
        ("GET", "/notifications/dlq", "notifications", Policy.ADMIN),
        ("POST", "/notifications/dlq/42/replay", "notifications", Policy.ADMIN),
        ("POST", "/notifications/dlq/42/discard", "notifications", Policy.ADMIN),
        ("GET", "/analytics/dashboard", "analytics", Policy.ADMIN),
        ("GET", "/analytics", "analytics", Policy.ADMIN),
    ],
)
def test_each_path_goes_to_its_service_under_its_policy(
    method: str, path: str, upstream: str, policy: Policy
) -> None:
    route = match_route(method, path)
    assert route is not None
    assert (route.upstream, route.policy) == (upstream, policy)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/auth/login"),  # login is public for POST only
        ("DELETE", "/auth/register"),
        ("POST", "/inventory/stock/p-1"),
        ("GET", "/inventory/stock"),
        ("GET", "/inventory/products//"),
    ],
)
def test_public_routes_are_public_only_for_their_methods_and_shapes(method: str, path: str) -> None:
    route = match_route(method, path)
    assert route is not None
    assert route.policy is not Policy.PUBLIC


def test_method_matching_ignores_case() -> None:
    route = match_route("post", "/auth/login")
    assert route is not None
    assert route.policy is Policy.PUBLIC


@pytest.mark.parametrize(
    "path", ["/", "/healthz", "/ordersx", "/authority/login", "/socket.io/", "/inventoryx/products"]
)
def test_paths_outside_the_service_prefixes_match_nothing(path: str) -> None:
    assert match_route("GET", path) is None


def test_a_prefix_served_by_two_upstreams_is_refused() -> None:
    routes = (
        Route("/orders/**", "orders", Policy.SIGNED_IN),
        Route("/orders/x", "auth", Policy.PUBLIC),
    )
    with pytest.raises(ValueError, match="both orders and auth"):
        service_prefixes(routes)


def test_every_upstream_of_the_registry_is_routed_under_its_own_name() -> None:
    assert service_prefixes(ROUTES) == {f"/{name}": name for name in UPSTREAM_NAMES}


@pytest.mark.parametrize("upstream", ["gateway", "order", "kit"])
def test_a_route_to_a_name_that_is_no_upstream_is_refused(upstream: str) -> None:
    with pytest.raises(ValueError, match=f"'{upstream}' is not an upstream"):
        Route(f"/{upstream}/**", upstream, Policy.SIGNED_IN)


def test_every_prefix_ends_with_a_catch_all_that_is_not_public() -> None:
    for prefix in service_prefixes(ROUTES):
        catch_all = [r for r in ROUTES if r.pattern == prefix + "/**" and not r.methods]
        assert catch_all, prefix
        assert catch_all[0].policy is not Policy.PUBLIC


def test_double_star_only_ends_a_pattern() -> None:
    with pytest.raises(ValueError, match="only end"):
        Route("/orders/**/x", "orders", Policy.SIGNED_IN)


@pytest.mark.parametrize(
    ("path", "dotted"),
    [
        ("/orders/../auth/users", True),
        ("/inventory/products/./p-1", True),
        ("/orders/..", True),
        ("/orders/..x", False),
        ("/orders/a.b", False),
        ("/orders", False),
    ],
)
def test_dot_segments_are_detected(path: str, dotted: bool) -> None:
    assert has_dot_segments(path) is dotted
