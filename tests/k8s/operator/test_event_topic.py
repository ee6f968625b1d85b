"""EventTopic in the default mode: the operator changes the real Kafka topic through the Admin
API, refuses what Kafka cannot do, and deletes the topic only when the policy says so."""

from __future__ import annotations

import pytest

from devstack.testing import KafkaServer
from tests.k8s.operator.support import Resources, topic_state, unique
from tests.support import wait_until

pytestmark = pytest.mark.k8s
PLURAL, KIND = "eventtopics", "EventTopic"


def test_creates_grows_reconfigures_refuses_decrease_and_deletes(
    direct: Resources, kafka_server: KafkaServer
) -> None:
    name = unique("orders")
    topic = f"test.{name}"
    bootstrap = kafka_server.bootstrap
    direct.create(
        PLURAL,
        name,
        {
            "topicName": topic,
            "partitions": 2,
            "config": {"retention.ms": "3600000"},
            "deletionPolicy": "Delete",
        },
        KIND,
    )
    direct.wait_ready(PLURAL, name)
    assert topic_state(bootstrap, topic) == (2, {"retention.ms": "3600000"})
    status = direct.get(PLURAL, name)["status"]
    assert (status["topicName"], status["partitions"], status["mode"]) == (topic, 2, "KafkaAdmin")

    # Grow and swap the config: retention.ms goes back to the broker default.
    direct.patch_spec(
        PLURAL,
        name,
        {"partitions": 4, "config": {"retention.ms": None, "cleanup.policy": "compact"}},
    )
    wait_until(
        lambda: topic_state(bootstrap, topic) == (4, {"cleanup.policy": "compact"}),
        message="4 partitions and only cleanup.policy overridden",
    )
    direct.wait_ready(PLURAL, name)

    direct.patch_spec(PLURAL, name, {"partitions": 1})
    refused = direct.wait_ready(PLURAL, name, status="False", reason="PartitionDecreaseRefused")
    assert "4 partitions" in refused["message"]
    assert topic_state(bootstrap, topic) == (4, {"cleanup.policy": "compact"})
    reasons = {event.reason for event in direct.events_for(name)}
    assert "TopicChanged" in reasons

    direct.delete(PLURAL, name)
    direct.wait_gone(PLURAL, name)
    wait_until(lambda: topic_state(bootstrap, topic) is None, message="topic deleted")


def test_retained_topic_outlives_its_resource(direct: Resources, kafka_server: KafkaServer) -> None:
    name = unique("audit")
    topic = f"test.{name}"
    direct.create(PLURAL, name, {"topicName": topic, "partitions": 1}, KIND)
    direct.wait_ready(PLURAL, name)
    direct.delete(PLURAL, name)
    direct.wait_gone(PLURAL, name)
    assert topic_state(kafka_server.bootstrap, topic) == (1, {})


def test_config_kafka_rejects_is_reported(direct: Resources, kafka_server: KafkaServer) -> None:
    name = unique("broken")
    direct.create(
        PLURAL,
        name,
        {"topicName": f"test.{name}", "partitions": 1, "config": {"cleanup.policy": "sometimes"}},
        KIND,
    )
    rejected = direct.wait_ready(PLURAL, name, status="False", reason="Rejected")
    assert "INVALID_CONFIG" in rejected["message"]
    assert topic_state(kafka_server.bootstrap, f"test.{name}") is None
    direct.delete(PLURAL, name)
    direct.wait_gone(PLURAL, name)
