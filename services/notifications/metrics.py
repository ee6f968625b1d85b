"""The notifications service's Prometheus metrics (labels bounded: event types, channels,
outcomes)."""

from __future__ import annotations

from prometheus_client import Counter

from services.notifications.domain import Channel, EventType

EVENTS = Counter(
    "notifications_events_total",
    "Order events applied, by event type and outcome (notified, stale: an older version than "
    "one already notified).",
    ["event_type", "outcome"],
)
DELIVERIES = Counter(
    "notifications_deliveries_total",
    "Deliveries by channel and outcome (recorded: written for publishing; skipped: no "
    "recipient known; queued: confirmed by RabbitMQ).",
    ["channel", "outcome"],
)

for _event in EventType:
    for _outcome in ("notified", "stale"):
        EVENTS.labels(str(_event), _outcome)
for _channel in Channel:
    for _outcome in ("recorded", "skipped", "queued"):
        DELIVERIES.labels(str(_channel), _outcome)
