"""The routing table: which service owns a path, and who may call it.

One table, read top to bottom; the first route whose methods and path pattern match decides
the upstream and the access policy. Patterns are literal segments, `*` for exactly one
non-empty segment (an id) and a trailing `**` for the rest of the path, including nothing
(`/orders/**` matches `/orders` and `/orders/42/cancel`). A path no route matches is 404 at the
gateway and never reaches a service.

Every service prefix ends in a catch-all route that needs a signed-in caller, so a new
endpoint in a service is protected until it is listed here as public.

The upstreams are the services of `services/registry.py` that have a gateway URL variable; a
route to any other name fails when this module is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeAlias

from services.registry import UPSTREAMS

Upstream: TypeAlias = str
"""The registry name of a service the gateway proxies to (`orders`); see UPSTREAM_NAMES."""

UPSTREAM_NAMES: frozenset[Upstream] = frozenset(service.name for service in UPSTREAMS)


class Policy(StrEnum):
    """Who may call a route."""

    PUBLIC = "public"
    SIGNED_IN = "signed-in"
    ADMIN = "admin"


ANY_METHOD: frozenset[str] = frozenset()
READ = frozenset({"GET", "HEAD"})
WRITE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
POST = frozenset({"POST"})
PUT = frozenset({"PUT"})


@dataclass(frozen=True, slots=True)
class Route:
    """A path pattern, the upstream that serves it and its access policy."""

    pattern: str
    upstream: Upstream
    policy: Policy
    methods: frozenset[str] = ANY_METHOD
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.upstream not in UPSTREAM_NAMES:
            raise ValueError(
                f"{self.pattern}: {self.upstream!r} is not an upstream of services/registry.py "
                f"({', '.join(sorted(UPSTREAM_NAMES))})"
            )
        segments = tuple(self.pattern.strip("/").split("/"))
        if "**" in segments[:-1]:
            raise ValueError(f"'**' may only end a pattern: {self.pattern}")
        object.__setattr__(self, "segments", segments)

    @property
    def prefix(self) -> str:
        """The service prefix of the pattern, such as `/orders`."""
        return "/" + self.segments[0]

    def matches(self, method: str, segments: tuple[str, ...]) -> bool:
        if self.methods and method not in self.methods:
            return False
        return _segments_match(self.segments, segments)


ROUTES: tuple[Route, ...] = (
    Route("/auth/register", "auth", Policy.PUBLIC, POST),
    Route("/auth/login", "auth", Policy.PUBLIC, POST),
    Route("/auth/refresh", "auth", Policy.PUBLIC, POST),
    Route("/auth/logout", "auth", Policy.PUBLIC, POST),
    Route("/auth/users/**", "auth", Policy.ADMIN),
    Route("/auth/**", "auth", Policy.SIGNED_IN),
    Route("/orders/*/status", "orders", Policy.ADMIN, PUT),
    Route("/orders/**", "orders", Policy.SIGNED_IN),
    Route("/inventory/products", "inventory", Policy.PUBLIC, READ),
    Route("/inventory/products/*", "inventory", Policy.PUBLIC, READ),
    Route("/inventory/stock/*", "inventory", Policy.PUBLIC, READ),
    Route("/inventory/products/**", "inventory", Policy.ADMIN, WRITE),
    Route("/inventory/stock/**", "inventory", Policy.ADMIN, WRITE),
    Route("/inventory/**", "inventory", Policy.SIGNED_IN),
    Route("/notifications/orders/**", "notifications", Policy.ADMIN),
    Route("/notifications/dlq/**", "notifications", Policy.ADMIN),
    Route("/notifications/**", "notifications", Policy.SIGNED_IN),
    Route("/analytics/**", "analytics", Policy.ADMIN),
)


def path_segments(path: str) -> tuple[str, ...]:
    """The segments of an absolute path: `/orders/42` gives ('orders', '42')."""
    return tuple(path.split("/")[1:])


def _segments_match(pattern: tuple[str, ...], segments: tuple[str, ...]) -> bool:
    if pattern and pattern[-1] == "**":
        head = pattern[:-1]
        return len(segments) >= len(head) and _segments_match(head, segments[: len(head)])
    if len(pattern) != len(segments):
        return False
    return all(
        part == segment or (part == "*" and segment != "")
        for part, segment in zip(pattern, segments, strict=True)
    )


def has_dot_segments(path: str) -> bool:
    """Whether a path holds `.` or `..` segments, which a service might resolve differently."""
    return any(segment in (".", "..") for segment in path_segments(path))


def match_route(method: str, path: str, routes: tuple[Route, ...] = ROUTES) -> Route | None:
    """The first route that serves `method` on `path`, or None."""
    method = method.upper()
    segments = path_segments(path)
    return next((route for route in routes if route.matches(method, segments)), None)


def service_prefixes(routes: tuple[Route, ...] = ROUTES) -> dict[str, Upstream]:
    """Each service prefix and its upstream; a prefix served by two upstreams is an error."""
    prefixes: dict[str, Upstream] = {}
    for route in routes:
        known = prefixes.setdefault(route.prefix, route.upstream)
        if known != route.upstream:
            raise ValueError(f"{route.prefix} is routed to both {known} and {route.upstream}")
    return prefixes
