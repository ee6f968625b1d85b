"""The orders service's Prometheus metrics (label sets are bounded: statuses and outcomes)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.orders.domain import TRANSITIONS as LEGAL_TRANSITIONS
from services.orders.domain import Status

ORDERS_CREATED = Counter("orders_created_total", "Orders created (idempotent replays excluded).")
IDEMPOTENT_REPLAYS = Counter(
    "orders_idempotent_replays_total",
    "Create requests answered with the order of an earlier request with the same key.",
)
TRANSITIONS = Counter(
    "orders_transitions_total",
    "Order status changes applied, by new status and kind of actor: orders confirmed, failed "
    "and cancelled are this counter's CONFIRMED, FAILED and CANCELLED series (CREATED counts "
    "each new order once more).",
    ["status", "actor"],
)
CATALOGUE_LOOKUPS = Counter(
    "orders_catalogue_lookups_total",
    "Catalogue lookups to price an order, by where they were answered: memory (the copy kept "
    "current by inventory's catalogue signal) or inventory (a request).",
    ["source"],
)
EVENTS_IGNORED = Counter(
    "orders_events_ignored_total",
    "Consumed events that changed nothing, by topic and why (stale, unknown-order).",
    ["topic", "why"],
)
CONFIRMATION_LATENCY = Histogram(
    "orders_create_to_confirmed_seconds",
    "Time from an order's creation to its confirmation being applied.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
UNSETTLED = Gauge(
    "orders_unsettled",
    "Orders waiting for inventory's answer (CREATED) at the last count, up to one past "
    "MAX_UNSETTLED_ORDERS (backlog.py).",
)
CREATES_REFUSED = Counter(
    "orders_creates_refused_total",
    "Creates refused before any work, by reason (backlog: too many orders unsettled).",
    ["reason"],
)
ORDER_VALUE = Histogram(
    "orders_created_value",
    "Totals of the orders created, in units of their currency (the sum is the revenue booked).",
    ["currency"],
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000),
)

# Every series exists from the start, so rate() and alerts see zeros rather than gaps.
CREATES_REFUSED.labels("backlog")
TRANSITIONS.labels(Status.CREATED, "owner")
for _moves in LEGAL_TRANSITIONS.values():
    for _status, _actors in _moves.items():
        for _actor in _actors:
            TRANSITIONS.labels(_status, _actor)
