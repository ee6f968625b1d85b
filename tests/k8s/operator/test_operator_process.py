"""The operator process serves its liveness probe and Prometheus metrics."""

from __future__ import annotations

import urllib.request

import pytest

from devstack.testing import KafkaServer
from tests.k8s.operator.support import OperatorProcess, Resources, unique
from tests.support import wait_until

pytestmark = pytest.mark.k8s


def fetch(port: int, path: str) -> tuple[int, str]:
    url = f"http://127.0.0.1:{port}{path}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status), response.read().decode()


def test_liveness_and_reconciliation_metrics(
    direct_operator: OperatorProcess, direct: Resources, kafka_server: KafkaServer
) -> None:
    assert fetch(direct_operator.health_port, "/healthz")[0] == 200
    name = unique("metrics")
    direct.create("eventtopics", name, {"topicName": f"test.{name}", "partitions": 1}, "EventTopic")
    direct.wait_ready("eventtopics", name)
    sample = 'realtimeorder_operator_reconciliations_total{kind="EventTopic",outcome="TopicReady"}'

    def counted() -> float | None:
        status, text = fetch(direct_operator.metrics_port, "/metrics")
        assert status == 200
        values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(sample)]
        return values[0] if values else None

    assert wait_until(counted, message="reconciliation counted") >= 1
    direct.delete("eventtopics", name)
    direct.wait_gone("eventtopics", name)
