"""`labelled` (kit/metrics.py): the child `labels()` gives, found again without it."""

from __future__ import annotations

from prometheus_client import REGISTRY

from services.kit.metrics import EVENTS_PUBLISHED, HTTP_LATENCY, labelled


def _published(topic: str) -> float:
    value = REGISTRY.get_sample_value(
        "events_published_total", {"service": "labelled-test", "topic": topic}
    )
    return value or 0.0


def test_the_child_is_the_one_labels_gives_and_is_kept() -> None:
    child = labelled(EVENTS_PUBLISHED, "labelled-test", "a")
    assert child is EVENTS_PUBLISHED.labels("labelled-test", "a")
    assert labelled(EVENTS_PUBLISHED, "labelled-test", "a") is child
    assert labelled(EVENTS_PUBLISHED, "labelled-test", "b") is not child


def test_what_a_child_counts_is_exported_under_its_labels() -> None:
    before = _published("counted")
    labelled(EVENTS_PUBLISHED, "labelled-test", "counted").inc()
    labelled(EVENTS_PUBLISHED, "labelled-test", "counted").inc(2)
    assert _published("counted") == before + 3
    assert _published("other") == 0.0


def test_metrics_of_other_kinds_and_label_counts_are_kept_apart() -> None:
    latency = labelled(HTTP_LATENCY, "labelled-test", "GET", "/x")
    latency.observe(0.003)
    assert latency is HTTP_LATENCY.labels("labelled-test", "GET", "/x")
    assert labelled(HTTP_LATENCY, "labelled-test", "GET", "/y") is not latency
