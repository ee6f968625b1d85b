"""Deletion waits for the operator only when something outside the API server must be cleaned
up; a backing service that refuses the cleanup is reported, and an annotation ends the wait; two
resources naming one broker object: the later one is refused and deletes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.testing import KafkaServer
from tests.k8s.operator.support import (
    RabbitAdmin,
    Resources,
    topic_state,
    unique,
)
from tests.support import wait_until

pytestmark = pytest.mark.k8s
FINALIZER = "realtimeorder.io/finalizer"
SKIP_CLEANUP = "realtimeorder.io/skip-cleanup"


def finalizers(resources: Resources, plural: str, name: str) -> list[str]:
    found: list[str] = resources.get(plural, name)["metadata"].get("finalizers") or []
    return found


def annotate(resources: Resources, plural: str, name: str, annotations: dict[str, Any]) -> None:
    resources.objects.patch_namespaced_custom_object(
        "realtimeorder.io",
        "v1alpha1",
        resources.namespace,
        plural,
        name,
        {"metadata": {"annotations": annotations}},
        _content_type="application/merge-patch+json",
    )


def test_only_resources_with_cleanup_to_do_carry_the_finalizer(
    direct: Resources, kafka_server: KafkaServer
) -> None:
    kept, deleted = unique("kept"), unique("deleted")
    for name, policy in ((kept, "Retain"), (deleted, "Delete")):
        spec = {"topicName": f"test.{name}", "partitions": 1, "deletionPolicy": policy}
        direct.create("eventtopics", name, spec, "EventTopic")
        direct.wait_ready("eventtopics", name)
    queue = unique("kept-queue")
    direct.create(
        "notificationqueues",
        queue,
        {"queueName": f"test.{queue}", "type": "classic", "retryDelaysSeconds": [5]},
        "NotificationQueue",
    )
    direct.wait_ready("notificationqueues", queue)
    assert finalizers(direct, "eventtopics", kept) == []
    assert finalizers(direct, "notificationqueues", queue) == []
    assert finalizers(direct, "eventtopics", deleted) == [FINALIZER]

    # Switching the policy takes the finalizer off (and puts it back).
    direct.patch_spec("eventtopics", deleted, {"deletionPolicy": "Retain"})
    wait_until(lambda: finalizers(direct, "eventtopics", deleted) == [], message="released")
    direct.patch_spec("eventtopics", deleted, {"deletionPolicy": "Delete"})
    wait_until(lambda: finalizers(direct, "eventtopics", deleted) == [FINALIZER], message="held")

    for plural, name in (
        ("eventtopics", kept),
        ("eventtopics", deleted),
        ("notificationqueues", queue),
    ):
        direct.delete(plural, name)
        direct.wait_gone(plural, name)
    assert topic_state(kafka_server.bootstrap, f"test.{kept}") == (1, {})
    wait_until(
        lambda: topic_state(kafka_server.bootstrap, f"test.{deleted}") is None,
        message="the Delete topic deleted",
    )


def test_a_refused_cleanup_is_reported_and_the_annotation_ends_the_wait(
    refused: Resources, rabbit: RabbitAdmin
) -> None:
    name = unique("orphan")
    spec = {
        "queueName": f"test.{name}",
        "type": "classic",
        "retryDelaysSeconds": [5],
        "deletionPolicy": "Delete",
    }
    refused.create("notificationqueues", name, spec, "NotificationQueue")
    assert refused.wait_ready("notificationqueues", name, status="False")["reason"] == "Rejected"
    wait_until(
        lambda: finalizers(refused, "notificationqueues", name) == [FINALIZER],
        message="finalizer added",
    )

    refused.delete("notificationqueues", name)
    failed = wait_until(
        lambda: (
            (c := refused.ready("notificationqueues", name))
            and c["reason"] == "CleanupFailed"
            and c
        ),
        message="CleanupFailed reported",
    )
    assert SKIP_CLEANUP in failed["message"]
    assert refused.get("notificationqueues", name) is not None, "still waiting for its cleanup"

    annotate(refused, "notificationqueues", name, {SKIP_CLEANUP: "true"})
    refused.wait_gone("notificationqueues", name, timeout=20)


def test_the_later_of_two_resources_naming_one_topic_is_refused_and_deletes_nothing(
    direct: Resources, kafka_server: KafkaServer
) -> None:
    first, second = unique("first"), unique("second")
    topic = f"test.{first}"
    spec = {"topicName": topic, "partitions": 1, "deletionPolicy": "Delete"}
    direct.create("eventtopics", first, spec, "EventTopic")
    direct.wait_ready("eventtopics", first)
    direct.create("eventtopics", second, {**spec, "partitions": 2}, "EventTopic")
    refused = direct.wait_ready("eventtopics", second, status="False")
    assert refused["reason"] == "ResourceConflict"
    assert first in refused["message"]
    assert topic_state(kafka_server.bootstrap, topic) == (1, {}), "the later spec changed nothing"

    direct.delete("eventtopics", second)
    direct.wait_gone("eventtopics", second)
    assert topic_state(kafka_server.bootstrap, topic) == (1, {}), "it deleted nothing"
    direct.wait_ready("eventtopics", first)
    direct.delete("eventtopics", first)
    direct.wait_gone("eventtopics", first)
    wait_until(lambda: topic_state(kafka_server.bootstrap, topic) is None, message="deleted")


def test_the_later_of_two_notification_queues_is_refused(
    direct: Resources, rabbit: RabbitAdmin
) -> None:
    first, second = unique("first"), unique("second")
    spec = {"queueName": f"test.{first}", "type": "classic", "retryDelaysSeconds": [5]}
    direct.create("notificationqueues", first, spec, "NotificationQueue")
    direct.wait_ready("notificationqueues", first)
    direct.create("notificationqueues", second, {**spec, "type": "quorum"}, "NotificationQueue")
    refused = direct.wait_ready("notificationqueues", second, status="False")
    assert refused["reason"] == "ResourceConflict"
    # The owner going away hands the queue to the other one (on the next repair pass).
    direct.delete("notificationqueues", first)
    direct.wait_gone("notificationqueues", first)
    taken = wait_until(
        lambda: (
            (c := direct.ready("notificationqueues", second))
            and c["reason"] != "ResourceConflict"
            and c
        ),
        message="the remaining resource takes over",
    )
    assert taken["reason"] == "QueueArgumentsConflict", "a classic queue exists, it wants quorum"
    direct.delete("notificationqueues", second)
    direct.wait_gone("notificationqueues", second)
    for queue in (f"test.{first}", f"test.{first}.retry.5s", f"test.{first}.dlq"):
        rabbit.delete(queue)
