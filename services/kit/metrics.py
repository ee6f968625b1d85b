"""Prometheus metrics shared by every service, with bounded label sets."""

from __future__ import annotations

import gc
import time
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

M = TypeVar("M", bound=MetricWrapperBase)
_children: dict[tuple[Any, ...], Any] = {}


def labelled(metric: M, *values: str) -> M:
    """`metric.labels(*values)`, looked up in a dictionary after the first time.

    prometheus_client checks and converts the label values and takes a lock at every
    `labels()` call: a few microseconds, paid several times per order by the hot paths
    (requests, events, effects), 2.6% of the orders service's profile. Every metric here has a
    bounded label set, and no labelled child is ever removed, so the children are kept.
    """
    key = (metric, *values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child


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
    "(done, failed, timed_out, dropped: not run because the queue was full, coalesced: "
    "an equal one was waiting).",
    ["service", "outcome"],
)
LIVE_PUSHES = Counter(
    "live_pushes_total",
    "Socket.IO emits this process sent through Redis (kit/live.py), by outcome (published, "
    "failed: not published after two attempts, dropped: the queue was full).",
    ["outcome"],
)
EVENT_PROCESSING = Histogram(
    "events_processing_seconds",
    "Time to apply one consumed event (parse, transaction, commit), by topic.",
    ["service", "topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
EVENT_GROUPS = Histogram(
    "events_group_size",
    "Consumed events applied together in one transaction (kit/consumer.py), per group.",
    ["service"],
    buckets=(1, 2, 5, 10, 20, 50),
)
CALL_GROUPS = Histogram(
    "grouped_calls_size",
    "Calls run together as one group (kit/groups.py: orders' creates in one statement), per group.",
    ["service", "name"],
    buckets=(1, 2, 3, 5, 10, 20, 32),
)
GROUPS_FAILED = Counter(
    "events_groups_failed_total",
    "Groups of consumed events whose shared transaction failed and was rolled back; their "
    "events were then applied one by one.",
    ["service"],
)
CONSUMER_LAG = Gauge(
    "events_consumer_lag_messages",
    "Messages of a consumed topic this process's consumer has not processed yet: the "
    "partitions' high watermarks minus its positions, summed over the partitions it holds.",
    ["service", "topic"],
)
DEAD_LETTER_DEPTH = Gauge(
    "events_dead_letter_messages",
    "Messages kept in a consumed topic's dead-letter topic (<topic>.dlq), sampled periodically.",
    ["service", "topic"],
)
OUTBOX_BACKLOG = Gauge(
    "outbox_unpublished_events",
    "Outbox rows not yet published to Kafka, sampled by the relay.",
    ["service"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_unpublished_age_seconds",
    "Age of the oldest outbox row not yet published to Kafka (0 when none waits), sampled by "
    "the relay.",
    ["service"],
)
GC_PAUSES = Histogram(
    "python_gc_pause_seconds",
    "Time the process stood still in a collection of CPython's cyclic garbage collector, by "
    "generation (2 is a full collection, which visits every tracked object).",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


class _GcTimer:
    """A `gc.callbacks` entry that times each collection into `GC_PAUSES`.

    A process holding many long-lived objects (the gateway with thousands of Socket.IO
    connections holds a few hundred per connection) pauses for each full collection in
    proportion to all of them, and every request and push waits meanwhile; this shows it.
    """

    def __init__(self) -> None:
        self._started = 0.0
        self._pauses = [GC_PAUSES.labels(str(generation)) for generation in range(3)]

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._pauses[info["generation"]].observe(time.perf_counter() - self._started)


def time_gc_pauses() -> None:
    """Time the process's garbage collections from now on (once per process)."""
    if not any(isinstance(callback, _GcTimer) for callback in gc.callbacks):
        gc.callbacks.append(_GcTimer())
