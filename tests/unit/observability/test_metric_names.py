"""Every metric a dashboard or rule reads is one some service exports, or a recording rule
defines: a renamed metric breaks this test, not a panel nobody looks at until an incident."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.observability.support import (
    DASHBOARDS,
    PROMETHEUS_OWN,
    RULE_FILES,
    dashboard_exprs,
    exported_names,
    load_dashboard,
    metric_names,
    recorded_names,
    rules,
)


@pytest.fixture(scope="module")
def known() -> set[str]:
    return exported_names() | recorded_names() | PROMETHEUS_OWN


def test_the_name_extraction_sees_through_promql() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (service, le) (rate(a_bucket{route="/x"}[5m])))'
        " / on (job) group_left (x) b offset 5m > 3 and c:d:e + 1e3 * $__rate_interval"
    )
    assert metric_names(expr) == {"a_bucket", "b", "c:d:e"}


def test_the_exported_names_cover_every_service_and_every_metric_type() -> None:
    names = exported_names()
    for name in (
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "background_job_up",
        "orders_create_to_confirmed_seconds_count",
        "inventory_reservation_failures_total",
        "notifications_worker_deliveries_total",
        "gateway_socketio_connections",
        "auth_logins_total",
    ):
        assert name in names


def test_the_dashboards_are_the_three_expected() -> None:
    assert {path.stem for path in DASHBOARDS} == {
        "platform-overview",
        "order-pipeline",
        "notifications",
    }


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_a_dashboard_reads_only_exported_or_recorded_metrics(path: Path, known: set[str]) -> None:
    dashboard = load_dashboard(path)
    exprs = list(dashboard_exprs(dashboard))
    assert exprs, "a dashboard without queries"
    unknown = {name: expr for expr in exprs for name in metric_names(expr) - known}
    assert unknown == {}
    uids = {panel["id"] for panel in dashboard["panels"]}
    assert len(uids) == len(dashboard["panels"]), "panel ids repeat"


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda path: path.name)
def test_a_rule_file_reads_only_exported_or_recorded_metrics(path: Path, known: set[str]) -> None:
    unknown = {
        name: rule.get("record") or rule.get("alert")
        for rule_path, rule in rules()
        if rule_path == path
        for name in metric_names(rule["expr"]) - known
    }
    assert unknown == {}


def test_a_recording_rule_is_read_by_some_alert_or_dashboard() -> None:
    read: set[str] = set()
    for _, rule in rules():
        read |= metric_names(rule["expr"])
    for path in DASHBOARDS:
        for expr in dashboard_exprs(load_dashboard(path)):
            read |= metric_names(expr)
    assert recorded_names() - read == set()
