"""Prometheus metrics shared by every service, with bounded label sets."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
