"""Metrics of the traffic the gateway forwards; label values are bounded by the routing table."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

UPSTREAM_REQUESTS = Counter(
    "gateway_upstream_requests_total",
    "Requests forwarded upstream, by upstream and outcome: the status class of the answer, "
    "or timeout, or unavailable.",
    ["upstream", "status"],
)
UPSTREAM_LATENCY = Histogram(
    "gateway_upstream_duration_seconds",
    "Time from sending a request upstream to having read the whole answer, by upstream.",
    ["upstream"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SOCKET_CONNECTIONS = Gauge(
    "gateway_socketio_connections",
    "Socket.IO connections this replica accepted and still holds (refused ones never count).",
)
PRODUCT_CACHE = Counter(
    "gateway_product_cache_requests_total",
    "Product list reads by how the gateway's copy answered: hit, miss (fetched), coalesced "
    "(waited for another request's fetch), bypass (forwarded: copy unconfirmed or token for "
    "inventory to judge).",
    ["result"],
)
PRODUCT_CACHE_NOT_MODIFIED = Counter(
    "gateway_product_cache_not_modified_total",
    "Product list reads answered 304 Not Modified from the gateway's copy.",
)
for _result in ("hit", "miss", "coalesced", "bypass"):
    PRODUCT_CACHE.labels(_result)
ADMISSION_SHED = Counter(
    "gateway_admission_shed_total",
    "Requests refused with 503 because their upstream had no free slot and no queue place "
    "(or the queue wait ran out), by upstream.",
    ["upstream"],
)
REFUSALS_REPEATED = Counter(
    "gateway_refusals_repeated_total",
    "Requests refused with 503 without forwarding them, because their upstream refused the same "
    "method and route with 503 and Retry-After moments before (admission.py), by upstream.",
    ["upstream"],
)
UPSTREAM_IN_FLIGHT = Gauge(
    "gateway_upstream_in_flight",
    "Requests forwarded to an upstream and not answered yet, by upstream.",
    ["upstream"],
)
ADMISSION_QUEUED = Gauge(
    "gateway_admission_queued",
    "Requests waiting for a slot of their upstream, by upstream.",
    ["upstream"],
)
