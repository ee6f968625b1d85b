"""The Prometheus that `make up` starts (devstack's config) loads the repository's rules, and
they evaluate on metrics as the services export them: a background job reported down by a real
/metrics endpoint turns BackgroundJobDown pending."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import start_http_server

from devstack import servers, testing
from devstack.ports import HOST, free_port
from services.kit.metrics import JOB_UP
from tests.support import wait_until
from tests.unit.observability.support import RULE_FILES, rule_groups

pytestmark = pytest.mark.integration


def api(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


@pytest.fixture(scope="module")
def exporter() -> Iterator[int]:
    """This process's metrics (the services' modules are imported) on a real /metrics."""
    port = free_port()
    server, thread = start_http_server(port, addr=HOST)
    yield port
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, exporter: int) -> Iterator[int]:
    base = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    spec = servers.prometheus(base / "prometheus", port, {"probe": exporter})
    process = testing.start(spec, base)
    try:
        yield port
    finally:
        process.stop()


def test_the_started_prometheus_loads_every_rule_of_the_repository(prometheus: int) -> None:
    loaded = api(prometheus, "/api/v1/rules")["groups"]
    expected = {
        (str(Path(path)), group["name"]): len(group["rules"])
        for path in RULE_FILES
        for group in rule_groups(path)
    }
    assert {(group["file"], group["name"]): len(group["rules"]) for group in loaded} == expected

    def evaluated() -> bool:
        groups = api(prometheus, "/api/v1/rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return all(rule["health"] == "ok" for rule in rules) and all(
            not group["lastEvaluation"].startswith("0001") for group in groups
        )

    wait_until(evaluated, timeout=60, every=0.5, message="every rule evaluated without error")


def test_a_job_reported_down_makes_its_alert_pending(prometheus: int) -> None:
    JOB_UP.labels("probe-service", "consumer").set(0)

    def pending() -> list[dict[str, Any]]:
        alerts = api(prometheus, "/api/v1/alerts")["alerts"]
        return [
            alert
            for alert in alerts
            if alert["labels"]["alertname"] == "BackgroundJobDown"
            and alert["labels"].get("service") == "probe-service"
        ]

    (alert,) = wait_until(
        pending, timeout=60, every=0.5, message="BackgroundJobDown for the probe's consumer"
    )
    assert alert["state"] in {"pending", "firing"}
    assert alert["labels"]["job"] == "consumer"
    assert alert["labels"]["severity"] == "critical"
