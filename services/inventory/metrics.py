"""The inventory service's Prometheus metrics (bounded label sets)."""

from __future__ import annotations

from prometheus_client import Counter

RESERVATION_OUTCOMES = ("confirmed", "failed", "released", "committed", "expired")
RESERVATIONS = Counter(
    "inventory_reservations_total",
    "Reservations by outcome (confirmed, failed, released, committed, expired).",
    ["outcome"],
)
PRODUCT_CACHE = Counter(
    "inventory_product_cache_requests_total",
    "Product list reads by cache result (hit, miss).",
    ["result"],
)

# Every series exists from the start, so rate() and alerts see zeros rather than gaps.
for _outcome in RESERVATION_OUTCOMES:
    RESERVATIONS.labels(_outcome)
for _result in ("hit", "miss"):
    PRODUCT_CACHE.labels(_result)
