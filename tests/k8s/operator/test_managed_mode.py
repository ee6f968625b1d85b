"""With Strimzi and the RabbitMQ topology operator configured, the operator renders their custom
resources instead of calling Kafka and RabbitMQ. Neither operator runs here, so the tests play
Strimzi's part: they write the KafkaTopic's status and hold it with Strimzi's finalizer."""

from __future__ import annotations

from typing import Any, cast

import pytest

from realtimeorder_operator.builders import owner_label
from tests.k8s.operator.support import (
    RABBITMQ_CLUSTER,
    STRIMZI_CLUSTER,
    Resources,
    unique,
)
from tests.support import wait_until

pytestmark = pytest.mark.k8s
STRIMZI = ("kafka.strimzi.io", "v1", "kafkatopics")
STRIMZI_FINALIZER = "strimzi.io/topic-operator"


def kafka_topic(resources: Resources, name: str) -> Any:
    group, version, plural = STRIMZI
    return resources.get(plural, name, group, version)


def patch_kafka_topic(
    resources: Resources, name: str, body: dict[str, Any], *, status: bool = False
) -> None:
    group, version, plural = STRIMZI
    patch = (
        resources.objects.patch_namespaced_custom_object_status
        if status
        else resources.objects.patch_namespaced_custom_object
    )
    patch(group, version, resources.namespace, plural, name, body,
          _content_type="application/merge-patch+json")  # fmt: skip


def strimzi_reports(
    resources: Resources, name: str, ready: str, reason: str = "", message: str = ""
) -> None:
    """What Strimzi's topic operator would write after handling the current generation."""
    generation = kafka_topic(resources, name)["metadata"]["generation"]
    condition = {"type": "Ready", "status": ready, "lastTransitionTime": "2026-01-01T00:00:00Z"}
    if reason:
        condition |= {"reason": reason, "message": message}
    patch_kafka_topic(
        resources,
        name,
        {"status": {"observedGeneration": generation, "conditions": [condition], "topicId": "t-1"}},
        status=True,
    )


def test_event_topic_owns_a_kafka_topic_and_mirrors_its_status(managed: Resources) -> None:
    name = unique("orders")
    managed.create(
        "eventtopics",
        name,
        {"topicName": f"test.{name}", "partitions": 3, "replicationFactor": 1,
         "config": {"retention.ms": "3600000"}},
        "EventTopic",
    )  # fmt: skip
    topic = wait_until(lambda: kafka_topic(managed, name), message="KafkaTopic created")
    owner = managed.get("eventtopics", name)
    assert topic["metadata"]["labels"]["strimzi.io/cluster"] == STRIMZI_CLUSTER
    [reference] = topic["metadata"]["ownerReferences"]
    assert (reference["kind"], reference["uid"], reference["controller"]) == (
        "EventTopic",
        owner["metadata"]["uid"],
        True,
    )
    assert topic["spec"] == {
        "topicName": f"test.{name}",
        "partitions": 3,
        "replicas": 1,
        "config": {"retention.ms": "3600000"},
    }
    assert (
        managed.wait_ready("eventtopics", name, status="Unknown")["reason"] == "WaitingForStrimzi"
    )

    strimzi_reports(managed, name, "True")
    assert managed.wait_ready("eventtopics", name)["reason"] == "KafkaTopicReady"
    assert managed.get("eventtopics", name)["status"]["topicId"] == "t-1"

    strimzi_reports(managed, name, "False", "KafkaError", "broker said no")
    failed = managed.wait_ready("eventtopics", name, status="False", reason="KafkaError")
    assert failed["message"] == "broker said no"

    managed.patch_spec(
        "eventtopics",
        name,
        {"partitions": 6, "config": {"retention.ms": None, "cleanup.policy": "compact"}},
    )
    wait_until(
        lambda: kafka_topic(managed, name)["spec"]["partitions"] == 6,
        message="KafkaTopic grown",
    )
    assert kafka_topic(managed, name)["spec"]["config"] == {"cleanup.policy": "compact"}
    strimzi_reports(managed, name, "True")
    managed.wait_ready("eventtopics", name)

    managed.patch_spec("eventtopics", name, {"partitions": 2})
    managed.wait_ready("eventtopics", name, status="False", reason="PartitionDecreaseRefused")
    assert kafka_topic(managed, name)["spec"]["partitions"] == 6


def ready_reason(resources: Resources, plural: str, name: str) -> str | None:
    obj = resources.get(plural, name)
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c.get("reason") for c in conditions if c["type"] == "Ready"), None)


@pytest.mark.parametrize(("policy", "unmanaged"), [("Retain", True), ("Delete", False)])
def test_deletion_policy_reaches_strimzi(managed: Resources, policy: str, unmanaged: bool) -> None:
    """Retain marks the KafkaTopic unmanaged before deleting it, so Strimzi keeps the topic;
    either way the EventTopic carries the operator's finalizer and stays until Strimzi has let
    the KafkaTopic go, saying what it waits for, so an uninstall leaves no KafkaTopic behind."""
    name = unique(f"topic-{policy.lower()}")
    managed.create("eventtopics", name, {"partitions": 1, "deletionPolicy": policy}, "EventTopic")
    wait_until(lambda: kafka_topic(managed, name), message="KafkaTopic created")
    patch_kafka_topic(managed, name, {"metadata": {"finalizers": [STRIMZI_FINALIZER]}})
    finalizers = managed.get("eventtopics", name)["metadata"].get("finalizers") or []
    assert "realtimeorder.io/finalizer" in finalizers

    managed.delete("eventtopics", name)
    topic = wait_until(
        lambda: (t := kafka_topic(managed, name)) and t["metadata"].get("deletionTimestamp") and t,
        message="KafkaTopic being deleted",
    )
    annotations = topic["metadata"].get("annotations") or {}
    assert (annotations.get("strimzi.io/managed") == "false") is unmanaged
    # Strimzi still holds the KafkaTopic: the EventTopic waits, and says so once it has looked
    # CLEANUP_ATTEMPTS times (1 + 2 + 4 + 8 s apart).
    wait_until(
        lambda: ready_reason(managed, "eventtopics", name) == "WaitingForStrimzi",
        timeout=60,
        message="EventTopic waiting for Strimzi",
    )
    assert managed.get("eventtopics", name) is not None

    patch_kafka_topic(managed, name, {"metadata": {"finalizers": None}})
    wait_until(lambda: kafka_topic(managed, name) is None, message="KafkaTopic gone")
    managed.wait_gone("eventtopics", name, timeout=60)


def topology_items(resources: Resources, plural: str, owner: str) -> list[dict[str, Any]]:
    found = resources.objects.list_namespaced_custom_object(
        "rabbitmq.com", "v1beta1", resources.namespace, plural,
        label_selector=f"realtimeorder.io/owner={owner}",
    )  # fmt: skip
    items: list[dict[str, Any]] = cast(dict[str, Any], found)["items"]
    return items


def topology(resources: Resources, plural: str, owner: str) -> dict[str, Any]:
    return {
        item["metadata"]["name"]: item["spec"] for item in topology_items(resources, plural, owner)
    }


def test_notification_queue_renders_topology_queues_and_policies(
    managed: Resources,
) -> None:
    name = unique("email")
    work = f"test.{name}"
    managed.create(
        "notificationqueues",
        name,
        {"queueName": work, "type": "quorum", "maxAttempts": 4, "retryDelaysSeconds": [5, 60],
         "deletionPolicy": "Delete"},
        "NotificationQueue",
    )  # fmt: skip
    # Rendered is not ready: no messaging topology operator has reported on the objects yet.
    pending = managed.wait_ready(
        "notificationqueues", name, status="False", reason="TopologyPending"
    )
    assert f"Queue {name}-work" in pending["message"]
    queues = topology(managed, "queues", name)
    policies = topology(managed, "policies", name)
    assert set(queues) == {
        f"{name}-work",
        f"{name}-dead-letter",
        f"{name}-retry-5s",
        f"{name}-retry-60s",
    }
    assert (
        queues[f"{name}-work"]
        == {
            "name": work,
            "vhost": "/",
            "type": "quorum",
            "durable": True,
            "autoDelete": False,
            "deletionPolicy": "delete",
            "rabbitmqClusterReference": {"name": RABBITMQ_CLUSTER},
        }
        or queues[f"{name}-work"]["name"] == work
    )
    assert queues[f"{name}-dead-letter"]["deletionPolicy"] == "retain"
    at_least_once = {"dead-letter-strategy": "at-least-once", "overflow": "reject-publish"}
    assert policies[f"{name}-work"]["definition"] == {
        "dead-letter-exchange": "",
        "dead-letter-routing-key": f"{work}.dlq",
        "delivery-limit": 4,
        **at_least_once,
    }
    assert policies[f"{name}-retry-60s"]["definition"] == {
        "message-ttl": 60_000,
        "dead-letter-exchange": "",
        "dead-letter-routing-key": work,
        **at_least_once,
    }
    assert f"{name}-dead-letter" not in policies, "the dead-letter queue needs no policy"

    # The topology operator's verdict, as it writes it, turns the NotificationQueue Ready.
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "SuccessfulCreateOrUpdate",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    for plural in ("queues", "policies"):
        for item in topology_items(managed, plural, name):
            status = {"observedGeneration": item["metadata"]["generation"], "conditions": [ready]}
            managed.objects.patch_namespaced_custom_object_status(
                "rabbitmq.com", "v1beta1", managed.namespace, plural, item["metadata"]["name"],
                {"status": status},
            )  # fmt: skip
    assert managed.wait_ready("notificationqueues", name)["reason"] == "TopologyReady"

    managed.patch_spec("notificationqueues", name, {"retryDelaysSeconds": [5]})
    wait_until(
        lambda: (
            f"{name}-retry-60s" not in topology(managed, "queues", name)
            and f"{name}-retry-60s" not in topology(managed, "policies", name)
        ),
        message="objects of the dropped delay deleted",
    )

    managed.delete("notificationqueues", name)
    managed.wait_gone("notificationqueues", name)
    wait_until(
        lambda: not topology(managed, "queues", name) and not topology(managed, "policies", name),
        message="owned objects garbage-collected",
    )


def test_a_resource_named_longer_than_a_label_value_still_owns_its_objects(
    managed: Resources,
) -> None:
    """A resource name may have 253 characters, a label value 63 (a release named
    `shop-production` already makes `shop-production-realtimeorder-inventory.reservation-
    expired.dlq`): the objects it owns are labelled with a value that fits, the same every
    time, and found by it."""
    long = "a-name-longer-than-the-sixty-three-characters-of-a-label-value"
    topic = unique(long)
    managed.create(
        "eventtopics", topic, {"topicName": f"test.{unique('long')}", "partitions": 1}, "EventTopic"
    )
    created = wait_until(lambda: kafka_topic(managed, topic), message="KafkaTopic created")
    assert created["metadata"]["labels"]["realtimeorder.io/owner"] == owner_label(topic)
    assert len(owner_label(topic)) <= 63
    strimzi_reports(managed, topic, "True")
    assert managed.wait_ready("eventtopics", topic)["reason"] == "KafkaTopicReady"

    queue = unique(long)
    managed.create(
        "notificationqueues",
        queue,
        {"queueName": f"test.{unique('long')}", "type": "classic", "retryDelaysSeconds": [5]},
        "NotificationQueue",
    )
    managed.wait_ready("notificationqueues", queue, status="False", reason="TopologyPending")
    assert set(topology(managed, "queues", owner_label(queue))) == {
        f"{queue}-work",
        f"{queue}-retry-5s",
        f"{queue}-dead-letter",
    }
    managed.patch_spec("notificationqueues", queue, {"retryDelaysSeconds": [10]})
    wait_until(
        lambda: (
            set(topology(managed, "queues", owner_label(queue)))
            == {f"{queue}-work", f"{queue}-retry-10s", f"{queue}-dead-letter"}
        ),
        message="the objects of the changed delay replaced, found by the label",
    )
    managed.delete("notificationqueues", queue)
    managed.delete("eventtopics", topic)
    managed.wait_gone("eventtopics", topic)
