"""Prometheus metrics shared by every service, with bounded label sets."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests handled, by route template, method and status class.",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to handle an HTTP request, by route template.",
    ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
EVENTS_PUBLISHED = Counter(
    "events_published_total", "Events published to Kafka, by topic.", ["service", "topic"]
)
EVENTS_CONSUMED = Counter(
    "events_consumed_total",
    "Events consumed from Kafka, by topic and outcome (processed, duplicate, dead_lettered).",
    ["service", "topic", "outcome"],
)
JOB_UP = Gauge(
    "background_job_up",
    "1 while a background job (relay, consumer, periodic job) runs, 0 while it is down.",
    ["service", "job"],
)
JOB_RESTARTS = Counter(
    "background_job_restarts_total",
    "Background jobs restarted by the runtime after they failed or ended on their own.",
    ["service", "job"],
)
AFTER_COMMIT_EFFECTS = Counter(
    "after_commit_effects_total",
    "After-commit effects (live pushes, cache invalidations) by outcome "
    "(done, failed, timed_out, dropped: not run because the queue was full).",
    ["service", "outcome"],
)
