"""Pure decisions and object bodies: no I/O, so every rule here is unit-tested on its own.

The handlers observe Kafka, RabbitMQ and the API server, hand what they saw to these functions,
and carry out the returned plan: a topic plan (create, grow, reconfigure, or refuse), the queue
topology of a NotificationQueue, the Strimzi and RabbitMQ topology operator objects, and the
status conditions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

GROUP = "realtimeorder.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
OWNER_LABEL = f"{GROUP}/owner"
READY = "Ready"

STRIMZI_GROUP = "kafka.strimzi.io"
STRIMZI_VERSION = "v1"
STRIMZI_CLUSTER_LABEL = "strimzi.io/cluster"
STRIMZI_MANAGED_ANNOTATION = "strimzi.io/managed"
# The escape hatch for a backing service that is gone or refuses the operator: a resource
# annotated so is deleted at once, and what it made in Kafka or RabbitMQ is left as it is.
SKIP_CLEANUP_ANNOTATION = f"{GROUP}/skip-cleanup"

TOPOLOGY_GROUP = "rabbitmq.com"
TOPOLOGY_VERSION = "v1beta1"

DeletionPolicy = Literal["Retain", "Delete"]
ConditionStatus = Literal["True", "False", "Unknown"]
Body = dict[str, Any]


# ---- conditions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    status: ConditionStatus
    reason: str
    message: str
    type: str = READY


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def find_condition(
    conditions: Sequence[Mapping[str, Any]] | None, condition_type: str = READY
) -> Mapping[str, Any] | None:
    return next((c for c in conditions or () if c.get("type") == condition_type), None)


def with_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    condition: Condition,
    *,
    generation: int | None,
    now: datetime,
) -> list[Body]:
    """The conditions list with `condition` set; its transition time moves only on a change."""
    previous = find_condition(conditions, condition.type)
    changed = previous is None or previous.get("status") != condition.status
    entry: Body = {
        "type": condition.type,
        "status": condition.status,
        "reason": condition.reason,
        "message": condition.message,
        "lastTransitionTime": (
            rfc3339(now) if changed or previous is None else previous.get("lastTransitionTime")
        ),
    }
    if generation is not None:
        entry["observedGeneration"] = generation
    others = [dict(c) for c in conditions or () if c.get("type") != condition.type]
    return [*others, entry]


# A label value holds at most 63 characters; an object name up to 253.
LABEL_VALUE_MAX = 63


def owner_label(owner_name: str) -> str:
    """The value of OWNER_LABEL on the objects a resource owns: its name, or, for a name too long
    for a label value, the name's first characters and a hash of the whole name (still unique,
    and the same on every call). The owner itself is read from the owner reference."""
    if len(owner_name) <= LABEL_VALUE_MAX:
        return owner_name
    digest = hashlib.sha256(owner_name.encode()).hexdigest()[:12]
    return f"{owner_name[: LABEL_VALUE_MAX - len(digest) - 1]}-{digest}"


def controller_name(obj: Mapping[str, Any], kind: str) -> str | None:
    """The name of the object's controlling owner of `kind`, from its owner references."""
    for reference in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if reference.get("kind") == kind and reference.get("controller"):
            return str(reference["name"])
    return None


def owner_reference(owner: Mapping[str, Any]) -> Body:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


# ---- deletion and ownership ------------------------------------------------------------------


def skips_cleanup(meta: Mapping[str, Any]) -> bool:
    annotations = meta.get("annotations") or {}
    return str(annotations.get(SKIP_CLEANUP_ANNOTATION, "")).lower() == "true"


def event_topic_needs_cleanup(
    spec: Mapping[str, Any], meta: Mapping[str, Any], *, strimzi: bool
) -> bool:
    """Whether deleting an EventTopic must wait for the operator (kopf's finalizer).

    Only when something outside the API server must be done first. In Admin API mode: deleting
    the Kafka topic (`Delete`); a retained topic needs nothing. In Strimzi mode, always: the
    operator deletes the KafkaTopic (marked unmanaged first for `Retain`, so Strimzi keeps the
    topic) and releases the EventTopic only once Strimzi has let the KafkaTopic go, so an
    uninstall never ends with a KafkaTopic left behind or still being deleted. Everything else
    deletes without the operator, so an uninstall or a namespace deletion never waits for it.
    """
    if skips_cleanup(meta):
        return False
    return strimzi or spec.get("deletionPolicy") == "Delete"


def backoff_seconds(retry: int, longest: float) -> float:
    """The delay before looking again after `retry` earlier looks: 1, 2, 4... up to `longest`."""
    return float(min(2 ** min(retry, 16), longest))


def notification_queue_needs_cleanup(
    spec: Mapping[str, Any], meta: Mapping[str, Any], *, topology: bool
) -> bool:
    """Whether deleting a NotificationQueue must wait for the operator: only to delete its
    queues through the management API (`Delete`); topology mode's Queues are garbage-collected
    and carry their own deletion policy."""
    if skips_cleanup(meta) or topology:
        return False
    return spec.get("deletionPolicy") == "Delete"


def first_claimant(
    resource: Mapping[str, Any], rivals: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """Of the other resources naming the same broker object as `resource`, the one that owns
    it, or None when `resource` does: the earliest created, ties broken by namespace, name and
    uid, so every reconciler reaches the same verdict (Strimzi's rule for two KafkaTopics of one
    topic). A claimant being deleted still owns the object until it is gone."""

    def rank(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
        meta = obj["metadata"]
        return (
            str(meta.get("creationTimestamp") or ""),
            str(meta.get("namespace") or ""),
            str(meta.get("name") or ""),
            str(meta.get("uid") or ""),
        )

    uid = resource["metadata"]["uid"]
    earlier = [r for r in rivals if r["metadata"]["uid"] != uid and rank(r) < rank(resource)]
    return min(earlier, key=rank) if earlier else None


def conflict_condition(kind: str, what: str, owner: Mapping[str, Any]) -> Condition:
    meta = owner["metadata"]
    return Condition(
        "False",
        "ResourceConflict",
        f"{what} is managed by {kind} {meta.get('namespace')}/{meta['name']}, created first; "
        "this one changes nothing (and deletes nothing) while that one exists",
    )


# ---- Kafka topics -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int | None
    config: Mapping[str, str]
    deletion_policy: DeletionPolicy

    @classmethod
    def from_resource(cls, spec: Mapping[str, Any], resource_name: str) -> TopicSpec:
        return cls(
            name=spec.get("topicName") or resource_name,
            partitions=int(spec["partitions"]),
            replication_factor=(
                int(spec["replicationFactor"]) if spec.get("replicationFactor") else None
            ),
            config={str(k): str(v) for k, v in (spec.get("config") or {}).items()},
            deletion_policy="Delete" if spec.get("deletionPolicy") == "Delete" else "Retain",
        )


@dataclass(frozen=True)
class ObservedTopic:
    partitions: int
    replication_factor: int
    # Only the topic's own overrides (dynamic topic configs), not inherited broker defaults.
    config: Mapping[str, str]


@dataclass(frozen=True)
class TopicPlan:
    create: bool = False
    partitions: int | None = None
    set_config: Mapping[str, str] = field(default_factory=dict)
    reset_config: tuple[str, ...] = ()
    refusal: Condition | None = None

    @property
    def changes(self) -> bool:
        return bool(self.create or self.partitions or self.set_config or self.reset_config)


def plan_topic(desired: TopicSpec, observed: ObservedTopic | None) -> TopicPlan:
    """What to do to make the topic match `desired`; a refusal changes nothing at all.

    The spec's config is authoritative: a topic-level override missing from it is reset to the
    broker default, so removing a key from the resource has an effect.
    """
    if observed is None:
        return TopicPlan(create=True)
    if desired.partitions < observed.partitions:
        return TopicPlan(
            refusal=Condition(
                "False",
                "PartitionDecreaseRefused",
                f"topic {desired.name} has {observed.partitions} partitions and Kafka cannot "
                f"remove partitions; spec.partitions={desired.partitions} was not applied. "
                f"Set it back to {observed.partitions} or more.",
            )
        )
    if (
        desired.replication_factor is not None
        and desired.replication_factor != observed.replication_factor
    ):
        return TopicPlan(
            refusal=Condition(
                "False",
                "ReplicationFactorChangeRefused",
                f"topic {desired.name} has replication factor {observed.replication_factor}; "
                "changing it needs a partition reassignment, which this operator does not do. "
                f"spec.replicationFactor={desired.replication_factor} was not applied.",
            )
        )
    return TopicPlan(
        partitions=desired.partitions if desired.partitions > observed.partitions else None,
        set_config={
            key: value
            for key, value in sorted(desired.config.items())
            if observed.config.get(key) != value
        },
        reset_config=tuple(sorted(set(observed.config) - set(desired.config))),
    )


def describe_plan(plan: TopicPlan, desired: TopicSpec) -> str:
    if plan.create:
        return f"created topic {desired.name} with {desired.partitions} partitions"
    parts = []
    if plan.partitions:
        parts.append(f"partitions increased to {plan.partitions}")
    if plan.set_config:
        parts.append("set " + ", ".join(f"{k}={v}" for k, v in plan.set_config.items()))
    if plan.reset_config:
        parts.append("reset " + ", ".join(plan.reset_config))
    return f"topic {desired.name}: " + ("; ".join(parts) if parts else "up to date")


def build_kafka_topic(
    owner: Mapping[str, Any], desired: TopicSpec, *, cluster: str, namespace: str
) -> Body:
    """The Strimzi KafkaTopic owned by an EventTopic (same name and namespace)."""
    spec: Body = {"topicName": desired.name, "partitions": desired.partitions}
    if desired.replication_factor is not None:
        spec["replicas"] = desired.replication_factor
    spec["config"] = dict(desired.config)
    return {
        "apiVersion": f"{STRIMZI_GROUP}/{STRIMZI_VERSION}",
        "kind": "KafkaTopic",
        "metadata": {
            "name": owner["metadata"]["name"],
            "namespace": namespace,
            "labels": {
                STRIMZI_CLUSTER_LABEL: cluster,
                OWNER_LABEL: owner_label(owner["metadata"]["name"]),
            },
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": spec,
    }


def plan_kafka_topic_update(
    desired: TopicSpec, existing: Mapping[str, Any], owner_uid: str
) -> tuple[Body | None, Condition | None]:
    """A merge patch bringing an existing KafkaTopic to `desired`, or a refusal.

    Strimzi itself would reject a partition decrease (NotSupported); refusing it here first keeps
    the KafkaTopic unchanged and gives the same answer as the Admin API mode.
    """
    owners = existing.get("metadata", {}).get("ownerReferences") or []
    if not any(ref.get("uid") == owner_uid for ref in owners):
        return None, Condition(
            "False",
            "KafkaTopicConflict",
            f"a KafkaTopic named {existing['metadata']['name']} exists and is not owned by this "
            "EventTopic; it was left untouched",
        )
    current = existing.get("spec") or {}
    current_partitions = int(current.get("partitions") or 0)
    if desired.partitions < current_partitions:
        return None, Condition(
            "False",
            "PartitionDecreaseRefused",
            f"the KafkaTopic has {current_partitions} partitions and Kafka cannot remove "
            f"partitions; spec.partitions={desired.partitions} was not applied.",
        )
    patch: Body = {}
    if current.get("partitions") != desired.partitions:
        patch["partitions"] = desired.partitions
    if desired.replication_factor is not None and current.get("replicas") != (
        desired.replication_factor
    ):
        patch["replicas"] = desired.replication_factor
    current_config = {str(k): str(v) for k, v in (current.get("config") or {}).items()}
    if current_config != dict(desired.config):
        # A merge patch merges maps: removed keys must be sent as null to disappear.
        patch["config"] = {key: None for key in current_config} | dict(desired.config)
    return ({"spec": patch} if patch else None), None


def mirror_kafka_topic_status(kafka_topic: Mapping[str, Any]) -> Condition:
    """Our Ready condition from a Strimzi KafkaTopic's status."""
    status = kafka_topic.get("status") or {}
    generation = kafka_topic.get("metadata", {}).get("generation")
    ready = next((c for c in status.get("conditions") or () if c.get("type") == READY), None)
    if ready is None:
        return Condition(
            "Unknown",
            "WaitingForStrimzi",
            "the Strimzi topic operator has not reported on the KafkaTopic yet",
        )
    if generation is not None and status.get("observedGeneration", 0) < generation:
        return Condition(
            "Unknown",
            "WaitingForStrimzi",
            "the Strimzi topic operator has not processed the latest KafkaTopic change yet",
        )
    if ready.get("status") == "True":
        return Condition("True", "KafkaTopicReady", "the Strimzi KafkaTopic is ready")
    return Condition(
        "False",
        str(ready.get("reason") or "KafkaTopicNotReady"),
        str(ready.get("message") or "the Strimzi KafkaTopic is not ready"),
    )


# ---- RabbitMQ queues --------------------------------------------------------------------------

QueueRole = Literal["work", "retry", "dead-letter"]


@dataclass(frozen=True)
class QueueSpec:
    queue_name: str
    vhost: str
    queue_type: Literal["classic", "quorum"]
    max_attempts: int
    retry_delays_seconds: tuple[int, ...]
    dead_letter_queue: str
    message_ttl_seconds: int | None
    deletion_policy: DeletionPolicy

    @classmethod
    def from_resource(cls, spec: Mapping[str, Any], resource_name: str) -> QueueSpec:
        queue_name = spec.get("queueName") or resource_name
        delays = spec.get("retryDelaysSeconds")
        return cls(
            queue_name=queue_name,
            vhost=spec.get("vhost") or "/",
            queue_type="classic" if spec.get("type") == "classic" else "quorum",
            max_attempts=int(spec.get("maxAttempts") or 5),
            retry_delays_seconds=tuple(
                dict.fromkeys(int(d) for d in (delays if delays is not None else (5, 30, 300)))
            ),
            dead_letter_queue=spec.get("deadLetterQueue") or f"{queue_name}.dlq",
            message_ttl_seconds=(
                int(spec["messageTtlSeconds"]) if spec.get("messageTtlSeconds") else None
            ),
            deletion_policy="Delete" if spec.get("deletionPolicy") == "Delete" else "Retain",
        )


@dataclass(frozen=True)
class QueueDeclaration:
    name: str
    role: QueueRole
    queue_type: Literal["classic", "quorum"]
    # Everything but x-queue-type, which RabbitMQ reports as the queue's `type` instead.
    arguments: Mapping[str, Any]


def retry_queue_name(queue_name: str, delay_seconds: int) -> str:
    """Retry queues are named by their delay, so changing the delays adds queues instead of
    redeclaring existing ones with a different TTL (which RabbitMQ refuses)."""
    return f"{queue_name}.retry.{delay_seconds}s"


def is_retry_queue_of(queue_name: str, candidate: str) -> bool:
    prefix = f"{queue_name}.retry."
    delay = candidate.removeprefix(prefix)
    return candidate.startswith(prefix) and delay.endswith("s") and delay[:-1].isdigit()


def build_queue_topology(spec: QueueSpec) -> list[QueueDeclaration]:
    """The dead-letter queue, the work queue and one TTL queue per retry delay.

    Every queue is bound to the default exchange by its name, so the dead-letter exchange is the
    default exchange ("") and the routing key names the target queue: a rejected or expired work
    message goes to the dead-letter queue, and a message a worker parked in a retry queue returns
    to the work queue when its TTL expires. No extra exchanges or bindings exist to drift.

    Quorum queues that dead-letter (the work and retry queues) do so at least once: RabbitMQ's
    default, at-most-once, drops a message whose dead-lettering is not confirmed, so a message
    parked in a retry queue could vanish instead of coming back. At-least-once needs
    `x-overflow: reject-publish` (RabbitMQ 3.10+); the dead-letter queue itself dead-letters
    nothing and keeps only its type.
    """
    dead_lettering = (
        {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
        if spec.queue_type == "quorum"
        else {}
    )
    work: dict[str, Any] = {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": spec.dead_letter_queue,
        **dead_lettering,
    }
    if spec.message_ttl_seconds:
        work["x-message-ttl"] = spec.message_ttl_seconds * 1000
    if spec.queue_type == "quorum":
        work["x-delivery-limit"] = spec.max_attempts
    declarations = [
        QueueDeclaration(spec.dead_letter_queue, "dead-letter", spec.queue_type, {}),
        QueueDeclaration(spec.queue_name, "work", spec.queue_type, work),
    ]
    for delay in spec.retry_delays_seconds:
        declarations.append(
            QueueDeclaration(
                retry_queue_name(spec.queue_name, delay),
                "retry",
                spec.queue_type,
                {
                    "x-message-ttl": delay * 1000,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": spec.queue_name,
                    **dead_lettering,
                },
            )
        )
    return declarations


def queue_mismatches(
    declaration: QueueDeclaration, existing: Mapping[str, Any]
) -> list[tuple[str, Any, Any]]:
    """(what, desired, actual) for each way an existing queue differs from its declaration.

    `existing` is the management API's queue object. RabbitMQ refuses to redeclare a queue with
    different arguments, so these are reported instead of retried.
    """
    mismatches: list[tuple[str, Any, Any]] = []
    if existing.get("type", "classic") != declaration.queue_type:
        mismatches.append(("type", declaration.queue_type, existing.get("type")))
    if existing.get("durable") is False:
        mismatches.append(("durable", True, False))
    actual = {k: v for k, v in (existing.get("arguments") or {}).items() if k != "x-queue-type"}
    for key in sorted(set(actual) | set(declaration.arguments)):
        if actual.get(key) != declaration.arguments.get(key):
            mismatches.append((key, declaration.arguments.get(key), actual.get(key)))
    return mismatches


def describe_mismatches(name: str, mismatches: Sequence[tuple[str, Any, Any]]) -> str:
    details = ", ".join(f"{what}: wants {want!r}, has {have!r}" for what, want, have in mismatches)
    return (
        f"queue {name} exists with different settings ({details}); RabbitMQ cannot change them "
        "in place: delete the queue (after draining it) or revert the spec"
    )


# ---- RabbitMQ messaging topology operator -----------------------------------------------------

_POLICY_KEYS = {
    "x-message-ttl": "message-ttl",
    "x-dead-letter-exchange": "dead-letter-exchange",
    "x-dead-letter-routing-key": "dead-letter-routing-key",
    "x-delivery-limit": "delivery-limit",
    "x-dead-letter-strategy": "dead-letter-strategy",
    "x-overflow": "overflow",
}


def topology_object_name(owner_name: str, declaration: QueueDeclaration) -> str:
    if declaration.role == "retry":
        return f"{owner_name}-retry-{declaration.name.rsplit('.', 1)[-1]}"
    return f"{owner_name}-{declaration.role}"


def build_topology_objects(
    owner: Mapping[str, Any], spec: QueueSpec, *, cluster: str, namespace: str
) -> list[Body]:
    """Queue and Policy objects for the RabbitMQ messaging topology operator.

    A topology Queue's arguments are immutable, so each Queue carries only its type and the TTL
    and dead-lettering go into one Policy per queue, which stays editable.
    """
    owner_name = owner["metadata"]["name"]
    metadata_base = {
        "namespace": namespace,
        "labels": {OWNER_LABEL: owner_label(owner_name)},
        "ownerReferences": [owner_reference(owner)],
    }
    cluster_ref = {"name": cluster}
    objects: list[Body] = []
    for declaration in build_queue_topology(spec):
        name = topology_object_name(owner_name, declaration)
        keep = declaration.role == "dead-letter" or spec.deletion_policy == "Retain"
        objects.append(
            {
                "apiVersion": f"{TOPOLOGY_GROUP}/{TOPOLOGY_VERSION}",
                "kind": "Queue",
                "metadata": {"name": name, **metadata_base},
                "spec": {
                    "name": declaration.name,
                    "vhost": spec.vhost,
                    "type": declaration.queue_type,
                    "durable": True,
                    "deletionPolicy": "retain" if keep else "delete",
                    "rabbitmqClusterReference": cluster_ref,
                },
            }
        )
        if declaration.arguments:
            objects.append(
                {
                    "apiVersion": f"{TOPOLOGY_GROUP}/{TOPOLOGY_VERSION}",
                    "kind": "Policy",
                    "metadata": {"name": name, **metadata_base},
                    "spec": {
                        "name": f"realtimeorder.{declaration.name}",
                        "vhost": spec.vhost,
                        "pattern": "^" + declaration.name.replace(".", r"\.") + "$",
                        "applyTo": "queues",
                        "priority": 10,
                        "definition": {
                            _POLICY_KEYS[key]: value for key, value in declaration.arguments.items()
                        },
                        "rabbitmqClusterReference": cluster_ref,
                    },
                }
            )
    return objects


def topology_pending(objects: Sequence[Mapping[str, Any]]) -> list[str]:
    """The rendered Queue and Policy objects the messaging topology operator has not reported
    Ready for their current spec, each as "Kind name" with the operator's reason if it gave one.

    Ready means a `Ready` condition with status True and an `observedGeneration` (when the
    operator reports one) not older than the object's generation: a spec just patched is not
    ready until the operator has seen it."""
    pending = []
    for obj in objects:
        status = obj.get("status") or {}
        conditions = status.get("conditions") or []
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        observed = status.get("observedGeneration")
        generation = (obj.get("metadata") or {}).get("generation")
        seen = observed is None or generation is None or observed >= generation
        if ready is not None and ready.get("status") == "True" and seen:
            continue
        label = f"{obj.get('kind')} {obj['metadata']['name']}"
        if ready is not None and ready.get("status") == "False" and ready.get("message"):
            label += f" ({ready.get('reason') or 'not ready'}: {ready['message']})"
        pending.append(label)
    return sorted(pending)


def now_utc() -> datetime:
    return datetime.now(UTC)
