"""The notifications service's Prometheus metrics (labels bounded: event types, channels,
outcomes)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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

# --- the channel workers --------------------------------------------------------------------

WORKER_DELIVERIES = Counter(
    "notifications_worker_deliveries_total",
    "Messages a channel worker handled, by outcome: sent; retried (a transient failure, parked "
    "in a retry queue); dead_lettered; duplicate (already sent: not sent again); held (another "
    "worker holds it: parked until its claim expires); gone (the delivery is over).",
    ["channel", "outcome"],
)
EVENT_TO_DELIVERY = Histogram(
    "notifications_event_to_delivery_seconds",
    "From the order event to the provider accepting the message, by channel.",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
PROVIDER_SECONDS = Histogram(
    "notifications_provider_seconds",
    "One send to the provider (SMTP or HTTP), by channel and result.",
    ["channel", "result"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WORKER_STAGE_SECONDS = Counter(
    "notifications_worker_stage_seconds_total",
    "Time a worker spent per stage of its batches (claim, send, record, publish, ack), summed "
    "over batches: divided by the deliveries it is the time per delivery of each stage.",
    ["channel", "stage"],
)
DEAD_LETTERS = Gauge(
    "notifications_dead_letters",
    "Dead letters kept by the service, by status (dead: waiting for an admin; replayed; "
    "discarded), sampled periodically.",
    ["status"],
)

WORKER_OUTCOMES = ("sent", "retried", "dead_lettered", "duplicate", "held", "gone")
WORKER_STAGES = ("claim", "send", "record", "publish", "ack")
for _channel in Channel:
    for _outcome in WORKER_OUTCOMES:
        WORKER_DELIVERIES.labels(str(_channel), _outcome)
    for _stage in WORKER_STAGES:
        WORKER_STAGE_SECONDS.labels(str(_channel), _stage)
