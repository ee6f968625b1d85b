"""The operator's Prometheus metrics (bounded labels: kind and outcome, no object names)."""

from __future__ import annotations

from prometheus_client import Counter

RECONCILIATIONS = Counter(
    "realtimeorder_operator_reconciliations_total",
    "Reconciliations of our custom resources, by kind and outcome.",
    ["kind", "outcome"],
)
SCALINGS = Counter(
    "realtimeorder_operator_scalings_total",
    "Replica changes made by WorkerAutoscalers, by direction.",
    ["direction"],
)
