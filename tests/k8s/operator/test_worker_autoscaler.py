"""WorkerAutoscaler scales a real Deployment on real RabbitMQ depth and real Kafka lag, and back
down once the cooldown and stabilisation window have passed; each scale is a Kubernetes Event."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kubernetes import client

from devstack.testing import KafkaServer
from tests.k8s.operator.support import (
    GROUP,
    VERSION,
    Kubectl,
    RabbitAdmin,
    Resources,
    create_topic,
    delete_topic,
    unique,
)
from tests.support import wait_until

pytestmark = pytest.mark.k8s
PLURAL, KIND = "workerautoscalers", "WorkerAutoscaler"


def create_deployment(kubectl: Kubectl, namespace: str, name: str) -> None:
    labels = {"app": name}
    kubectl.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "worker", "image": "worker:test"}]},
                },
            },
        },
    )


def replicas(kube_api: client.ApiClient, namespace: str, name: str) -> int:
    scale = client.AppsV1Api(kube_api).read_namespaced_deployment_scale(name, namespace)
    assert scale.spec is not None
    return int(scale.spec.replicas or 0)


def scale_events(resources: Resources, name: str) -> list[str]:
    return [e.message for e in resources.events_for(name) if e.reason == "Scaled"]


def autoscaler(target: str, trigger: dict[str, Any], max_replicas: int = 5) -> dict[str, Any]:
    return {
        "targetRef": {"name": target},
        "minReplicas": 1,
        "maxReplicas": max_replicas,
        "cooldownSeconds": 3,
        "stabilizationSeconds": 2,
        "trigger": trigger,
    }


def status_at(resources: Resources, name: str, current: int) -> dict[str, Any]:
    """The status once it reports `current` replicas: the operator patches the Deployment's
    scale first and its own status after, so the two are briefly out of step."""

    def reported() -> dict[str, Any] | None:
        status: dict[str, Any] = resources.get(PLURAL, name).get("status") or {}
        return status if status.get("currentReplicas") == current else None

    return wait_until(reported, message=f"status reports {current} replicas")


def test_scales_on_queue_depth_and_back_down_after_cooldown(
    kube_api: client.ApiClient, kubectl: Kubectl, direct: Resources, rabbit: RabbitAdmin
) -> None:
    name = unique("email-worker")
    queue = f"test.{name}"
    rabbit.declare(queue, {"x-queue-type": "classic"})
    create_deployment(kubectl, direct.namespace, name)
    direct.create(
        PLURAL,
        name,
        autoscaler(name, {"queueDepth": {"queue": queue, "messagesPerReplica": 10}}),
        KIND,
    )
    direct.wait_ready(PLURAL, name)
    assert replicas(kube_api, direct.namespace, name) == 1

    rabbit.publish(queue, 35)
    wait_until(
        lambda: replicas(kube_api, direct.namespace, name) == 4, timeout=30, message="4 replicas"
    )
    status = status_at(direct, name, 4)
    assert (status["metricName"], status["metricValue"]) == ("queueDepth", 35)
    assert "lastScaleTime" in status
    assert any("from 1 to 4" in m for m in wait_until(lambda: scale_events(direct, name)))

    rabbit.purge(queue)
    wait_until(
        lambda: replicas(kube_api, direct.namespace, name) == 1, timeout=40, message="back to 1"
    )
    wait_until(
        lambda: any("from 4 to 1" in m for m in scale_events(direct, name)),
        message="scale-down event",
    )
    direct.delete(PLURAL, name)
    direct.wait_gone(PLURAL, name)
    rabbit.delete(queue)


def test_scales_on_kafka_lag_capped_at_partitions(
    kube_api: client.ApiClient, kubectl: Kubectl, direct: Resources, kafka_server: KafkaServer
) -> None:
    name = unique("analytics-worker")
    topic, group = f"test.{name}", f"group.{name}"
    bootstrap = kafka_server.bootstrap
    create_topic(bootstrap, topic, partitions=3)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(100):
        producer.produce(topic, key=str(i).encode(), value=b"{}")
    assert producer.flush(20) == 0
    create_deployment(kubectl, direct.namespace, name)
    trigger = {"kafkaLag": {"topic": topic, "consumerGroup": group, "lagPerReplica": 20}}
    direct.create(PLURAL, name, autoscaler(name, trigger, max_replicas=10), KIND)

    # The group never committed: 100 messages of lag want 5 workers; 3 partitions allow 3.
    wait_until(
        lambda: replicas(kube_api, direct.namespace, name) == 3, timeout=30, message="3 replicas"
    )
    status = status_at(direct, name, 3)
    assert (status["metricName"], status["metricValue"]) == ("kafkaLag", 100)

    # The group catches up: commit the log end of every partition, as its consumer would.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        ends = [
            TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p))[1])
            for p in range(3)
        ]
        consumer.commit(offsets=ends, asynchronous=False)
    finally:
        consumer.close()
    wait_until(
        lambda: replicas(kube_api, direct.namespace, name) == 1, timeout=40, message="back to 1"
    )
    assert status_at(direct, name, 1)["metricValue"] == 0

    direct.delete(PLURAL, name)
    direct.wait_gone(PLURAL, name)
    delete_topic(bootstrap, topic)


def test_missing_target_is_reported(direct: Resources) -> None:
    name = unique("ghost")
    direct.create(
        PLURAL,
        name,
        autoscaler("no-such-deployment", {"queueDepth": {"queue": "q", "messagesPerReplica": 1}}),
        KIND,
    )
    direct.wait_ready(PLURAL, name, status="False", reason="TargetNotFound")
    direct.delete(PLURAL, name)
    direct.wait_gone(PLURAL, name)


def test_finalizer_left_by_timer_based_versions_is_released(direct: Resources) -> None:
    """Older versions autoscaled with a kopf timer, which put kopf's finalizer on every
    WorkerAutoscaler; nothing needs it now, so it is removed and deletion is not blocked."""
    name, finalizer = unique("legacy"), f"{GROUP}/finalizer"
    direct.objects.create_namespaced_custom_object(
        GROUP,
        VERSION,
        direct.namespace,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {"name": name, "finalizers": [finalizer]},
            "spec": autoscaler(
                "no-such-deployment", {"queueDepth": {"queue": "q", "messagesPerReplica": 1}}
            ),
        },
    )
    wait_until(
        lambda: finalizer not in (direct.get(PLURAL, name)["metadata"].get("finalizers") or []),
        message="the old finalizer removed",
    )
    direct.delete(PLURAL, name)
    direct.wait_gone(PLURAL, name)
