"""The API server itself refuses invalid resources, through the CRDs' schemas and CEL rules."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.k8s.operator.support import GROUP, VERSION, Kubectl

pytestmark = pytest.mark.k8s
NAMESPACE = "crd-validation"


@pytest.fixture(scope="module")
def objects(kube_api: client.ApiClient, kubectl: Kubectl) -> client.CustomObjectsApi:
    kubectl("create", "namespace", NAMESPACE)
    return client.CustomObjectsApi(kube_api)


def create(objects: client.CustomObjectsApi, plural: str, kind: str, spec: dict[str, Any]) -> Any:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"generateName": "v-"},
        "spec": spec,
    }
    return objects.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, body)


def refused(objects: client.CustomObjectsApi, plural: str, kind: str, spec: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as caught:
        create(objects, plural, kind, spec)
    assert caught.value.status == 422
    return str(caught.value.body)


WA_TRIGGER = {"queueDepth": {"queue": "q", "messagesPerReplica": 10}}
KAFKA_LAG = {"topic": "t", "consumerGroup": "g", "lagPerReplica": 1}


@pytest.mark.parametrize(
    ("plural", "kind", "spec", "complaint"),
    [
        ("eventtopics", "EventTopic", {}, "partitions"),
        ("eventtopics", "EventTopic", {"partitions": 0}, "partitions"),
        ("eventtopics", "EventTopic", {"partitions": 1, "deletionPolicy": "No"}, "deletionPolicy"),
        ("eventtopics", "EventTopic", {"partitions": 1, "topicName": "no spaces"}, "topicName"),
        ("eventtopics", "EventTopic", {"partitions": 1, "config": {"retention.ms": 5}}, "config"),
        ("notificationqueues", "NotificationQueue", {"queueName": "amq.mine"}, "reserved"),
        ("notificationqueues", "NotificationQueue", {"type": "stream"}, "type"),
        ("notificationqueues", "NotificationQueue", {"retryDelaysSeconds": [5, 5]}, "Duplicate"),
        ("notificationqueues", "NotificationQueue", {"maxAttempts": 0}, "maxAttempts"),
        ("workerautoscalers", "WorkerAutoscaler",
         {"targetRef": {"name": "w"}, "minReplicas": 3, "maxReplicas": 2, "trigger": WA_TRIGGER},
         "minReplicas must not exceed maxReplicas"),
        ("workerautoscalers", "WorkerAutoscaler",
         {"targetRef": {"name": "w"}, "maxReplicas": 2, "trigger": {}},
         "exactly one of kafkaLag or queueDepth"),
        ("workerautoscalers", "WorkerAutoscaler",
         {"targetRef": {"name": "w"}, "maxReplicas": 2,
          "trigger": {**WA_TRIGGER, "kafkaLag": KAFKA_LAG}},
         "exactly one of kafkaLag or queueDepth"),
        ("workerautoscalers", "WorkerAutoscaler",
         {"targetRef": {"name": "w"}, "maxReplicas": 2,
          "trigger": {"queueDepth": {"queue": "q", "messagesPerReplica": 0}}},
         "messagesPerReplica"),
    ],
)  # fmt: skip
def test_invalid_specs_are_refused(
    objects: client.CustomObjectsApi, plural: str, kind: str, spec: dict[str, Any], complaint: str
) -> None:
    assert complaint in refused(objects, plural, kind, spec)


def test_defaults_are_applied(objects: client.CustomObjectsApi) -> None:
    queue = create(objects, "notificationqueues", "NotificationQueue", {})
    assert queue["spec"] == {
        "vhost": "/",
        "type": "quorum",
        "maxAttempts": 5,
        "retryDelaysSeconds": [5, 30, 300],
        "deletionPolicy": "Retain",
    }
    scaler = create(
        objects, "workerautoscalers", "WorkerAutoscaler",
        {"targetRef": {"name": "w"}, "maxReplicas": 3, "trigger": WA_TRIGGER},
    )  # fmt: skip
    assert scaler["spec"]["minReplicas"] == 1
    assert scaler["spec"]["targetRef"]["kind"] == "Deployment"
    assert (scaler["spec"]["cooldownSeconds"], scaler["spec"]["stabilizationSeconds"]) == (300, 300)


def test_names_are_immutable(objects: client.CustomObjectsApi) -> None:
    topic = create(objects, "eventtopics", "EventTopic", {"partitions": 1, "topicName": "a.b"})
    with pytest.raises(ApiException) as caught:
        objects.patch_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "eventtopics", topic["metadata"]["name"],
            {"spec": {"topicName": "c.d"}}, _content_type="application/merge-patch+json",
        )  # fmt: skip
    assert caught.value.status == 422
    assert "topicName is immutable" in str(caught.value.body)
