from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from realtimeorder_operator.builders import (
    SKIP_CLEANUP_ANNOTATION,
    Condition,
    ObservedTopic,
    QueueDeclaration,
    QueueSpec,
    TopicSpec,
    backoff_seconds,
    build_kafka_topic,
    build_queue_topology,
    build_topology_objects,
    conflict_condition,
    event_topic_needs_cleanup,
    first_claimant,
    is_retry_queue_of,
    mirror_kafka_topic_status,
    notification_queue_needs_cleanup,
    plan_kafka_topic_update,
    plan_topic,
    queue_mismatches,
    topology_pending,
    with_condition,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
OWNER: dict[str, Any] = {
    "apiVersion": "realtimeorder.io/v1alpha1",
    "kind": "EventTopic",
    "metadata": {"name": "orders", "namespace": "shop", "uid": "uid-1"},
}


def topic(**spec: Any) -> TopicSpec:
    return TopicSpec.from_resource({"partitions": 3, **spec}, "order.created")


# ---- topics --------------------------------------------------------------------------------


def test_topic_name_defaults_to_the_resource_name() -> None:
    assert topic().name == "order.created"
    assert topic(topicName="orders.v2").name == "orders.v2"
    assert topic().deletion_policy == "Retain"


def test_missing_topic_is_created() -> None:
    assert plan_topic(topic(), None).create


def test_partition_increase_and_config_changes() -> None:
    observed = ObservedTopic(
        partitions=3,
        replication_factor=1,
        config={"retention.ms": "1000", "cleanup.policy": "compact"},
    )
    plan = plan_topic(topic(partitions=6, config={"retention.ms": "2000"}), observed)
    assert plan.refusal is None
    assert plan.partitions == 6
    assert plan.set_config == {"retention.ms": "2000"}
    # The spec is authoritative: an override it no longer lists goes back to the default.
    assert plan.reset_config == ("cleanup.policy",)


def test_matching_topic_needs_nothing() -> None:
    observed = ObservedTopic(partitions=3, replication_factor=1, config={"retention.ms": "1000"})
    plan = plan_topic(topic(config={"retention.ms": "1000"}, replicationFactor=1), observed)
    assert not plan.changes
    assert plan.refusal is None


def test_partition_decrease_is_refused_and_nothing_else_changes() -> None:
    observed = ObservedTopic(partitions=6, replication_factor=1, config={})
    plan = plan_topic(topic(partitions=2, config={"retention.ms": "5"}), observed)
    assert plan.refusal is not None
    assert plan.refusal.status == "False"
    assert plan.refusal.reason == "PartitionDecreaseRefused"
    assert "6 partitions" in plan.refusal.message
    assert not plan.changes


def test_replication_factor_change_is_refused() -> None:
    observed = ObservedTopic(partitions=3, replication_factor=1, config={})
    plan = plan_topic(topic(replicationFactor=3), observed)
    assert plan.refusal is not None
    assert plan.refusal.reason == "ReplicationFactorChangeRefused"
    assert not plan.changes


# ---- Strimzi ----------------------------------------------------------------------------------


def test_kafka_topic_body_is_labelled_owned_and_complete() -> None:
    body = build_kafka_topic(
        OWNER,
        topic(partitions=6, replicationFactor=3, config={"retention.ms": "1000"}),
        cluster="events",
        namespace="shop",
    )
    assert body["apiVersion"] == "kafka.strimzi.io/v1"
    assert body["kind"] == "KafkaTopic"
    assert body["metadata"]["labels"]["strimzi.io/cluster"] == "events"
    assert body["metadata"]["namespace"] == "shop"
    [ref] = body["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"], ref["controller"]) == ("EventTopic", "uid-1", True)
    assert body["spec"] == {
        "topicName": "order.created",
        "partitions": 6,
        "replicas": 3,
        "config": {"retention.ms": "1000"},
    }


def kafka_topic(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "orders", "generation": 2, "ownerReferences": [{"uid": "uid-1"}]},
        "spec": {"topicName": "order.created", "partitions": 3, "config": {}, **spec},
    }


def test_kafka_topic_update_is_a_merge_patch_that_removes_dropped_config() -> None:
    existing = kafka_topic(config={"retention.ms": "1000", "cleanup.policy": "compact"})
    update, refusal = plan_kafka_topic_update(
        topic(partitions=5, config={"retention.ms": "2000"}), existing, "uid-1"
    )
    assert refusal is None
    assert update == {
        "spec": {
            "partitions": 5,
            "config": {"retention.ms": "2000", "cleanup.policy": None},
        }
    }


def test_kafka_topic_in_sync_needs_no_patch() -> None:
    assert plan_kafka_topic_update(topic(), kafka_topic(), "uid-1") == (None, None)


def test_kafka_topic_decrease_and_foreign_topic_are_refused() -> None:
    update, refusal = plan_kafka_topic_update(topic(partitions=1), kafka_topic(), "uid-1")
    assert update is None
    assert refusal is not None
    assert refusal.reason == "PartitionDecreaseRefused"
    update, refusal = plan_kafka_topic_update(topic(), kafka_topic(), "someone-else")
    assert update is None
    assert refusal is not None
    assert refusal.reason == "KafkaTopicConflict"


def test_strimzi_status_is_mirrored() -> None:
    pending = kafka_topic()
    assert mirror_kafka_topic_status(pending).reason == "WaitingForStrimzi"
    stale = {
        **kafka_topic(),
        "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert mirror_kafka_topic_status(stale).status == "Unknown"
    ready = {
        **kafka_topic(),
        "status": {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert mirror_kafka_topic_status(ready) == Condition(
        "True", "KafkaTopicReady", "the Strimzi KafkaTopic is ready"
    )
    failed = {
        **kafka_topic(),
        "status": {
            "observedGeneration": 2,
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "KafkaError", "message": "boom"}
            ],
        },
    }
    assert mirror_kafka_topic_status(failed) == Condition("False", "KafkaError", "boom")


# ---- queues -----------------------------------------------------------------------------------


def queue(**spec: Any) -> QueueSpec:
    return QueueSpec.from_resource(spec, "email.notifications")


def test_queue_spec_defaults() -> None:
    spec = queue()
    assert spec.queue_name == "email.notifications"
    assert spec.dead_letter_queue == "email.notifications.dlq"
    assert spec.queue_type == "quorum"
    assert spec.retry_delays_seconds == (5, 30, 300)
    assert spec.vhost == "/"


def test_topology_work_retry_and_dead_letter_queues() -> None:
    topology = build_queue_topology(
        queue(
            type="classic",
            retryDelaysSeconds=[5, 60],
            deadLetterQueue="notifications.dlq",
            messageTtlSeconds=3600,
        )
    )
    by_name = {d.name: d for d in topology}
    assert list(by_name) == [
        "notifications.dlq",
        "email.notifications",
        "email.notifications.retry.5s",
        "email.notifications.retry.60s",
    ]
    assert by_name["notifications.dlq"].arguments == {}
    assert by_name["email.notifications"].arguments == {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "notifications.dlq",
        "x-message-ttl": 3_600_000,
    }
    # A parked message goes back to the work queue when its delay has passed.
    assert by_name["email.notifications.retry.60s"].arguments == {
        "x-message-ttl": 60_000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "email.notifications",
    }
    assert {d.queue_type for d in topology} == {"classic"}


def test_retry_queues_are_recognised_by_name() -> None:
    assert is_retry_queue_of("email", "email.retry.30s")
    assert not is_retry_queue_of("email", "email.retry.30")
    assert not is_retry_queue_of("email", "email.retry.xs")
    assert not is_retry_queue_of("email", "email.dlq")
    assert not is_retry_queue_of("email", "emails.retry.5s")


def test_quorum_work_queue_gets_a_delivery_limit() -> None:
    work = next(d for d in build_queue_topology(queue(maxAttempts=4)) if d.role == "work")
    assert work.arguments["x-delivery-limit"] == 4


def test_quorum_queues_dead_letter_at_least_once() -> None:
    by_name = {
        d.name: d
        for d in build_queue_topology(
            queue(maxAttempts=3, retryDelaysSeconds=[5], deadLetterQueue="notifications.dlq")
        )
    }
    at_least_once = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    assert by_name["email.notifications"].arguments == {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "notifications.dlq",
        "x-delivery-limit": 3,
        **at_least_once,
    }
    # A message parked in a retry queue is not lost on its way back to the work queue.
    assert by_name["email.notifications.retry.5s"].arguments == {
        "x-message-ttl": 5_000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "email.notifications",
        **at_least_once,
    }
    # The dead-letter queue dead-letters nothing: it keeps only its type.
    assert by_name["notifications.dlq"].arguments == {}
    assert {d.queue_type for d in by_name.values()} == {"quorum"}


def test_queue_mismatches_name_every_difference() -> None:
    declaration = QueueDeclaration(
        "q", "retry", "classic", {"x-message-ttl": 5000, "x-dead-letter-exchange": ""}
    )
    same = {
        "type": "classic",
        "durable": True,
        "arguments": {
            "x-queue-type": "classic",
            "x-message-ttl": 5000,
            "x-dead-letter-exchange": "",
        },
    }
    assert queue_mismatches(declaration, same) == []
    other = {"type": "quorum", "durable": True, "arguments": {"x-message-ttl": 9000}}
    assert queue_mismatches(declaration, other) == [
        ("type", "classic", "quorum"),
        ("x-dead-letter-exchange", "", None),
        ("x-message-ttl", 5000, 9000),
    ]


def test_topology_operator_objects_put_ttl_and_dead_lettering_in_policies() -> None:
    owner = {
        **OWNER,
        "kind": "NotificationQueue",
        "metadata": {**OWNER["metadata"], "name": "email"},
    }
    objects = build_topology_objects(
        owner,
        queue(retryDelaysSeconds=[30], deletionPolicy="Delete"),
        cluster="rabbit",
        namespace="shop",
    )
    kinds_and_names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert kinds_and_names == [
        ("Queue", "email-dead-letter"),
        ("Queue", "email-work"),
        ("Policy", "email-work"),
        ("Queue", "email-retry-30s"),
        ("Policy", "email-retry-30s"),
    ]
    queues = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "Queue"}
    assert queues["email-work"] == {
        "name": "email.notifications",
        "vhost": "/",
        "type": "quorum",
        "durable": True,
        "deletionPolicy": "delete",
        "rabbitmqClusterReference": {"name": "rabbit"},
    }
    # The dead-letter queue may be shared: it is never deleted with one owner.
    assert queues["email-dead-letter"]["deletionPolicy"] == "retain"
    retry_policy = next(
        o["spec"]
        for o in objects
        if o["metadata"]["name"] == "email-retry-30s" and o["kind"] == "Policy"
    )
    assert retry_policy["pattern"] == r"^email\.notifications\.retry\.30s$"
    assert retry_policy["definition"] == {
        "message-ttl": 30_000,
        "dead-letter-exchange": "",
        "dead-letter-routing-key": "email.notifications",
        "dead-letter-strategy": "at-least-once",
        "overflow": "reject-publish",
    }
    policies = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "Policy"}
    work_policy = policies["email-work"]
    assert work_policy["definition"] == {
        "dead-letter-exchange": "",
        "dead-letter-routing-key": "email.notifications.dlq",
        "dead-letter-strategy": "at-least-once",
        "overflow": "reject-publish",
        "delivery-limit": 5,
    }
    # The dead-letter queue has no arguments beyond its type, so no Policy either.
    assert "email-dead-letter" not in policies


# ---- conditions -------------------------------------------------------------------------------


def test_condition_transition_time_moves_only_when_status_changes() -> None:
    first = with_condition(None, Condition("False", "Waiting", "a"), generation=1, now=NOW)
    assert first == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "Waiting",
            "message": "a",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "observedGeneration": 1,
        }
    ]
    later = NOW + timedelta(minutes=5)
    same_status = with_condition(first, Condition("False", "Other", "b"), generation=2, now=later)
    assert same_status[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same_status[0]["reason"] == "Other"
    flipped = with_condition(same_status, Condition("True", "Ok", "c"), generation=2, now=later)
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T00:05:00Z"


def test_other_condition_types_are_kept() -> None:
    existing = [{"type": "Progressing", "status": "True"}]
    result = with_condition(existing, Condition("True", "Ok", "fine"), generation=None, now=NOW)
    assert [c["type"] for c in result] == ["Progressing", "Ready"]


# ---- deletion and ownership ------------------------------------------------------------------


def test_only_a_deletion_that_cleans_up_outside_the_api_server_needs_the_finalizer() -> None:
    retain: dict[str, Any] = {"deletionPolicy": "Retain"}
    delete: dict[str, Any] = {"deletionPolicy": "Delete"}
    meta: dict[str, Any] = {"name": "t"}
    # Admin API mode deletes the topic itself; Strimzi mode deletes the KafkaTopic (unmanaged
    # first for Retain) and waits for Strimzi to let it go, whatever the policy.
    assert event_topic_needs_cleanup(delete, meta, strimzi=False)
    assert not event_topic_needs_cleanup(retain, meta, strimzi=False)
    assert not event_topic_needs_cleanup({}, meta, strimzi=False), "Retain is the default"
    assert event_topic_needs_cleanup(retain, meta, strimzi=True)
    assert event_topic_needs_cleanup(delete, meta, strimzi=True)
    assert event_topic_needs_cleanup({}, meta, strimzi=True)
    assert notification_queue_needs_cleanup(delete, meta, topology=False)
    assert not notification_queue_needs_cleanup(retain, meta, topology=False)
    assert not notification_queue_needs_cleanup(delete, meta, topology=True)


def test_waiting_for_a_deletion_looks_again_soon_then_less_often_within_a_bound() -> None:
    assert [backoff_seconds(retry, 15) for retry in range(6)] == [1, 2, 4, 8, 15, 15]
    assert backoff_seconds(10_000, 15) == 15


def test_the_skip_cleanup_annotation_releases_any_resource() -> None:
    meta: dict[str, Any] = {"annotations": {SKIP_CLEANUP_ANNOTATION: "true"}}
    assert SKIP_CLEANUP_ANNOTATION == "realtimeorder.io/skip-cleanup"
    assert not event_topic_needs_cleanup({"deletionPolicy": "Delete"}, meta, strimzi=False)
    assert not event_topic_needs_cleanup({}, meta, strimzi=True)
    assert not notification_queue_needs_cleanup({"deletionPolicy": "Delete"}, meta, topology=False)
    other: dict[str, Any] = {"annotations": {SKIP_CLEANUP_ANNOTATION: "no"}}
    assert event_topic_needs_cleanup({"deletionPolicy": "Delete"}, other, strimzi=False)


def claimant(name: str, created: str, namespace: str = "shop") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "creationTimestamp": created,
        }
    }


def test_the_first_created_claimant_owns_the_broker_object() -> None:
    first = claimant("a", "2026-01-01T00:00:00Z")
    later = claimant("b", "2026-01-01T00:00:05Z")
    same_second = claimant("c", "2026-01-01T00:00:05Z")
    everyone = [first, later, same_second]
    assert first_claimant(first, everyone) is None
    assert first_claimant(later, everyone) is first
    assert first_claimant(same_second, everyone) is first
    # The same verdict from every side: a tie in time goes by namespace, then name.
    assert first_claimant(same_second, [later, same_second]) is later
    assert first_claimant(later, [later, same_second]) is None
    other_namespace = claimant("a", "2026-01-01T00:00:05Z", namespace="ops")
    assert first_claimant(other_namespace, [other_namespace, later]) is None


def test_a_refused_claimant_names_the_owner() -> None:
    condition = conflict_condition("EventTopic", "topic order.created", claimant("a", "t"))
    assert (condition.status, condition.reason) == ("False", "ResourceConflict")
    assert "EventTopic shop/a" in condition.message


def _topology_object(
    name: str, ready: str | None, *, generation: int = 1, observed: int | None = 1
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if ready is not None:
        status["conditions"] = [
            {"type": "Ready", "status": ready, "reason": "FailedCreateOrUpdate", "message": "boom"}
        ]
    if observed is not None:
        status["observedGeneration"] = observed
    return {"kind": "Queue", "metadata": {"name": name, "generation": generation}, "status": status}


def test_topology_is_ready_only_when_the_topology_operator_says_so_for_the_current_spec() -> None:
    assert topology_pending([_topology_object("a", "True")]) == []
    assert topology_pending(
        [
            _topology_object("fresh", None, observed=None),  # not reconciled yet
            _topology_object("stale", "True", generation=2, observed=1),  # spec just patched
            _topology_object("refused", "False"),
            _topology_object("done", "True"),
        ]
    ) == [
        "Queue fresh",
        "Queue refused (FailedCreateOrUpdate: boom)",
        "Queue stale",
    ]
