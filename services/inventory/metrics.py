"""The inventory service's Prometheus metrics (bounded label sets)."""

from __future__ import annotations

from prometheus_client import Counter

from services.inventory.domain import (
    INACTIVE_PRODUCT,
    INSUFFICIENT_STOCK,
    INVALID_QUANTITY,
    UNKNOWN_PRODUCT,
)

RESERVATION_OUTCOMES = ("confirmed", "failed", "released", "committed", "expired")
RESERVATIONS = Counter(
    "inventory_reservations_total",
    "Reservations by outcome (confirmed, failed, released, committed, expired).",
    ["outcome"],
)
RESERVATION_FAILURES = Counter(
    "inventory_reservation_failures_total",
    "Orders refused, by reason (unknown-product, inactive-product, insufficient-stock, "
    "invalid-quantity); an order refused for two reasons counts once under each.",
    ["reason"],
)
REFUSAL_REASONS = (UNKNOWN_PRODUCT, INACTIVE_PRODUCT, INSUFFICIENT_STOCK, INVALID_QUANTITY)
PRODUCT_CACHE = Counter(
    "inventory_product_cache_requests_total",
    "Product list reads by cache result (hit, miss, skipped: past the cache's page cap).",
    ["result"],
)

# Every series exists from the start, so rate() and alerts see zeros rather than gaps.
for _outcome in RESERVATION_OUTCOMES:
    RESERVATIONS.labels(_outcome)
for _reason in REFUSAL_REASONS:
    RESERVATION_FAILURES.labels(_reason)
for _result in ("hit", "miss", "skipped"):
    PRODUCT_CACHE.labels(_result)
