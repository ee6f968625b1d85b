"""The service declares exactly the queues the operator declares from the chart's defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from realtimeorder_operator.builders import QueueSpec, build_queue_topology
from services.notifications.domain import Channel
from services.notifications.topology import DEAD_LETTER_QUEUE, WORK_QUEUES, queues

VALUES = Path(__file__).resolve().parents[3] / "charts" / "realtimeorder" / "values.yaml"


def test_the_seed_queue_names() -> None:
    assert set(WORK_QUEUES.values()) == {
        "email.notifications",
        "sms.notifications",
        "push.notifications",
    }
    assert DEAD_LETTER_QUEUE == "notifications.dlq"
    assert set(WORK_QUEUES) == set(Channel)


def test_every_queue_is_a_durable_quorum_queue() -> None:
    assert all(q.arguments["x-queue-type"] == "quorum" for q in queues())


def test_the_queues_are_those_the_operator_declares_from_the_chart_defaults() -> None:
    defaults: dict[str, Any] = yaml.safe_load(VALUES.read_text())["notificationQueues"]
    operator: dict[str, dict[str, Any]] = {}
    for queue in defaults["queues"]:
        spec = {
            "queueName": queue["name"],
            "type": defaults["type"],
            "maxAttempts": defaults["maxAttempts"],
            "retryDelaysSeconds": defaults["retryDelaysSeconds"],
            "deadLetterQueue": defaults["deadLetterQueue"],
            "messageTtlSeconds": defaults["messageTtlSeconds"] or None,
        }
        for declaration in build_queue_topology(QueueSpec.from_resource(spec, queue["name"])):
            operator[declaration.name] = {
                "x-queue-type": declaration.queue_type,
                **declaration.arguments,
            }
    assert {q.name: q.arguments for q in queues()} == operator
