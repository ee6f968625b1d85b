"""Kopf handlers: thin glue between the API server's events and the pure builders.

Each handler observes (Kafka, RabbitMQ, the API server), asks `builders` / `scaling` what to do,
does it, and writes the outcome into the resource's status: a Ready condition with a reason, a
message and the observed generation. An unreachable backing service raises
`kopf.TemporaryError` (retried after RETRY_DELAY_SECONDS); a request the backing service refuses
is reported in the condition and re-checked by the periodic repair, never retried in a loop.

The periodic work (drift repair, queue counts, autoscaling) is not done by per-object kopf
timers: one repair loop per kind lists the resources and reconciles each (see `_repair_forever`).

Run it with `python -m realtimeorder_operator` (settings from the environment, see settings.py),
or `kopf run -m realtimeorder_operator.handlers --standalone --all-namespaces`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import kopf
from kubernetes.aio import client as kube_client
from prometheus_client import start_http_server

from realtimeorder_operator import builders, scaling
from realtimeorder_operator.builders import (
    GROUP,
    OWNER_LABEL,
    STRIMZI_GROUP,
    STRIMZI_MANAGED_ANNOTATION,
    STRIMZI_VERSION,
    TOPOLOGY_GROUP,
    TOPOLOGY_VERSION,
    VERSION,
    Condition,
    QueueSpec,
    TopicSpec,
)
from realtimeorder_operator.kafka_admin import KafkaAdmin, KafkaRequestRejected, KafkaUnavailable
from realtimeorder_operator.kube import (
    CustomObjects,
    KubeRequestRejected,
    KubeUnavailable,
    connect,
    post_event,
)
from realtimeorder_operator.metrics import RECONCILIATIONS, SCALINGS
from realtimeorder_operator.rabbitmq_admin import (
    QueueConflict,
    RabbitManagement,
    RabbitRequestRejected,
    RabbitUnavailable,
)
from realtimeorder_operator.scale import DeploymentScaler
from realtimeorder_operator.settings import get_settings

SETTINGS = get_settings()
EVENT_TOPICS = "eventtopics"
NOTIFICATION_QUEUES = "notificationqueues"
WORKER_AUTOSCALERS = "workerautoscalers"
FINALIZER = f"{GROUP}/finalizer"


Handler = TypeVar("Handler", bound=Callable[..., Awaitable[None]])

# Why no kopf.timer (nolar/kopf#1305): kopf cannot stop a per-object timer that is in the middle of
# an iteration (timers have no cancellation timeout), so when an object is deleted while its timer
# runs, the deletion cycle only schedules a re-check in `cancellation_polling` (60 s); and when
# that cycle's own patch changes nothing on the server (progress annotations already gone), kopf
# skips the sleep-and-touch, no watch event follows, and the finalizer is never removed: the
# object stays in deletion for good. Kopf's deletion path is safe without spawning handlers, so
# the resources have none: a repair loop per kind (started at startup) does the periodic work.
_REPAIRS: list[Repair] = []
# One lock per object (by uid): its kopf handlers and the repair loop never run at the same time,
# so a repair in flight cannot re-declare what the deletion handler has just removed.
_OBJECT_LOCKS: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


@dataclass(frozen=True)
class Repair:
    plural: str
    interval: float
    reconcile: Callable[..., Awaitable[None]]
    # For kinds with a deletion handler: whether an object needs kopf's finalizer. Such an
    # object is repaired only once it carries it, so nothing is created for an object whose
    # deletion the operator might not get to handle.
    needs_finalizer: Callable[[Mapping[str, Any]], bool] | None


def _object_lock(uid: str) -> asyncio.Lock:
    lock = _OBJECT_LOCKS.get(uid)
    if lock is None:
        lock = _OBJECT_LOCKS[uid] = asyncio.Lock()
    return lock


def serialized(handler: Handler) -> Handler:
    """Run a kopf handler under its object's lock (shared with the repair loop)."""

    @functools.wraps(handler)
    async def locked(**kwargs: Any) -> None:
        async with _object_lock(kwargs["meta"]["uid"]):
            await handler(**kwargs)

    return cast(Handler, locked)


def reconciled(
    plural: str,
    interval: float = SETTINGS.reconcile_interval_seconds,
    *,
    needs_finalizer: Callable[[Mapping[str, Any]], bool] | None = None,
) -> Callable[[Handler], Handler]:
    """Register a reconciler for every moment a resource may need it: when it appears, when its
    spec changes, when the operator restarts, and every `interval` seconds from the kind's repair
    loop, which repairs what was changed behind the operator's back (a topic or queue deleted by
    hand)."""

    def register(handler: Handler) -> Handler:
        locked = serialized(handler)
        kopf.on.update(GROUP, VERSION, plural, field="spec")(locked)
        kopf.on.create(GROUP, VERSION, plural)(locked)
        kopf.on.resume(GROUP, VERSION, plural)(locked)
        _REPAIRS.append(Repair(plural, interval, handler, needs_finalizer))
        return handler

    return register


@dataclass
class Backends:
    api: kube_client.ApiClient
    kafka: KafkaAdmin
    rabbit: RabbitManagement
    scaler: DeploymentScaler
    event_topics: CustomObjects
    notification_queues: CustomObjects
    kafka_topics: CustomObjects
    topology_queues: CustomObjects
    topology_policies: CustomObjects
    repairs: list[asyncio.Task[None]] = field(default_factory=list)


def _backends(memo: kopf.Memo) -> Backends:
    return cast(Backends, memo.backends)


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    # Handler chatter stays in the logs; Events are posted explicitly for what users care about.
    settings.posting.level = logging.WARNING
    # One line per management API call would drown the operator's own messages.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if SETTINGS.metrics_port:
        start_http_server(SETTINGS.metrics_port)
    api = await connect()
    memo.backends = Backends(
        api=api,
        kafka=KafkaAdmin(
            SETTINGS.kafka_broker,
            timeout=SETTINGS.kafka_timeout_seconds,
            security=SETTINGS.kafka_security(),
        ),
        rabbit=RabbitManagement(
            SETTINGS.rabbitmq_management_url,
            SETTINGS.rabbitmq_user,
            SETTINGS.rabbitmq_password.get_secret_value(),
            timeout=SETTINGS.rabbitmq_timeout_seconds,
        ),
        scaler=DeploymentScaler(api),
        event_topics=CustomObjects(api, GROUP, VERSION, EVENT_TOPICS),
        notification_queues=CustomObjects(api, GROUP, VERSION, NOTIFICATION_QUEUES),
        kafka_topics=CustomObjects(api, STRIMZI_GROUP, STRIMZI_VERSION, "kafkatopics"),
        topology_queues=CustomObjects(api, TOPOLOGY_GROUP, TOPOLOGY_VERSION, "queues"),
        topology_policies=CustomObjects(api, TOPOLOGY_GROUP, TOPOLOGY_VERSION, "policies"),
    )
    backends = _backends(memo)
    for repair in _REPAIRS:
        objects = CustomObjects(api, GROUP, VERSION, repair.plural)
        backends.repairs.append(
            asyncio.create_task(
                _repair_forever(repair, objects, memo, settings),
                name=f"repair of {repair.plural}",
            )
        )


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    backends = _backends(memo)
    for task in backends.repairs:
        task.cancel()
    await asyncio.gather(*backends.repairs, return_exceptions=True)
    await backends.rabbit.aclose()
    await backends.api.close()  # type: ignore[no-untyped-call]


class _RepairLogger(kopf.LocalObjectLogger):
    """The per-object logger of a repair: what a kopf handler's logger posts as a Warning Event
    (WARNING and above) is kept in `events` and posted after the repair."""

    def __init__(self, body: kopf.Body, settings: kopf.OperatorSettings) -> None:
        super().__init__(body=body, settings=settings)
        self.events: list[tuple[str, str, str]] = []

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        super().log(level, msg, *args, **kwargs)
        if level >= logging.WARNING:
            self.events.append(
                ("Warning", "Logging", str(msg) % args if args else str(msg))
            )  # as kopf


def _event(logger: kopf.Logger, body: kopf.Body, type: str, reason: str, message: str) -> None:
    """kopf.event inside kopf handlers; queued on the repair's logger inside a repair."""
    if isinstance(logger, _RepairLogger):
        logger.events.append((type, reason, message))
    else:
        kopf.event(body, type=type, reason=reason, message=message)


async def _repair_forever(
    repair: Repair, objects: CustomObjects, memo: kopf.Memo, settings: kopf.OperatorSettings
) -> None:
    """Every `repair.interval` seconds, reconcile each resource of the kind (up to 16 at once)."""
    log = logging.getLogger("realtimeorder_operator.repair")
    slots = asyncio.Semaphore(16)

    async def one(found: dict[str, Any]) -> None:
        async with slots:
            try:
                await _repair_one(repair, objects, found["metadata"], memo, settings)
            except Exception:  # the loop outlives any one object's failure
                log.exception(f"repair of {repair.plural} {found['metadata'].get('name')} failed")

    while True:
        await asyncio.sleep(repair.interval)
        try:
            found = await objects.list_watched(SETTINGS.namespaces)
        except (KubeUnavailable, KubeRequestRejected) as exc:
            log.warning(f"cannot list {repair.plural}: {exc}")
            continue
        await asyncio.gather(
            *(one(item) for item in found if not item["metadata"].get("deletionTimestamp"))
        )


async def _repair_one(
    repair: Repair,
    objects: CustomObjects,
    listed: Mapping[str, Any],
    memo: kopf.Memo,
    settings: kopf.OperatorSettings,
) -> None:
    namespace, name, uid = listed["namespace"], listed["name"], listed["uid"]
    async with _object_lock(uid):
        try:
            fresh = await objects.get(namespace, name)
        except (KubeUnavailable, KubeRequestRejected):
            return  # the next pass looks again
        # Re-read under the lock: an object deleted meanwhile is left to its deletion handler.
        if (
            fresh is None
            or fresh["metadata"]["uid"] != uid
            or fresh["metadata"].get("deletionTimestamp")
            or (
                repair.needs_finalizer is not None
                and repair.needs_finalizer(fresh)
                and FINALIZER not in (fresh["metadata"].get("finalizers") or ())
            )
        ):
            return
        body = kopf.Body(cast(kopf.RawBody, fresh))
        patch = kopf.Patch()
        logger = _RepairLogger(body, settings)
        try:
            await repair.reconcile(
                body=body,
                spec=body.spec,
                meta=body.meta,
                status=body.status,
                patch=patch,
                memo=memo,
                logger=logger,
            )
        except kopf.TemporaryError:
            pass  # the Ready condition in the patch says why; the next pass retries
        except Exception:
            logger.exception(f"{repair.plural} repair failed")
        api = _backends(memo).api
        try:
            if patch.get("status"):
                await objects.patch_status(namespace, name, dict(patch["status"]))
            for type_, reason, message in logger.events:
                await post_event(api, fresh, type_, reason, message)
        except (KubeUnavailable, KubeRequestRejected) as exc:
            logger.warning(f"cannot record the repair's outcome: {exc}")


def _set_ready(
    patch: kopf.Patch,
    status: kopf.Status,
    meta: kopf.Meta,
    condition: Condition,
    logger: kopf.Logger | None = None,
) -> None:
    """Write the Ready condition; a new failure is logged (and posted as an Event) once."""
    generation = meta.get("generation")
    previous = builders.find_condition(status.get("conditions"))
    patch.status["conditions"] = builders.with_condition(
        status.get("conditions"), condition, generation=generation, now=builders.now_utc()
    )
    if condition.status == "True":
        patch.status["observedGeneration"] = generation
    elif (
        condition.status == "False"
        and logger is not None
        and (
            previous is None
            or previous.get("reason") != condition.reason
            or previous.get("observedGeneration") != generation
        )
    ):
        logger.warning(f"{condition.reason}: {condition.message}")


_UNAVAILABLE_REASONS = {
    KafkaUnavailable: "KafkaUnavailable",
    RabbitUnavailable: "RabbitMQUnavailable",
    KubeUnavailable: "KubernetesUnavailable",
}


def _unavailable(
    kind: str, patch: kopf.Patch, status: kopf.Status, meta: kopf.Meta, exc: Exception
) -> kopf.TemporaryError:
    """Report the outage in the Ready condition and ask kopf to retry after a delay."""
    reason = _UNAVAILABLE_REASONS.get(type(exc), "BackendUnavailable")
    RECONCILIATIONS.labels(kind, reason).inc()
    _set_ready(patch, status, meta, Condition("False", reason, str(exc)))
    return kopf.TemporaryError(str(exc), delay=SETTINGS.retry_delay_seconds)


def _cleanup_failed(
    kind: str,
    patch: kopf.Patch,
    status: kopf.Status,
    meta: kopf.Meta,
    retry: int,
    exc: Exception,
    logger: kopf.Logger,
) -> kopf.TemporaryError:
    """A deletion whose cleanup failed: retried every RETRY_DELAY_SECONDS for CLEANUP_ATTEMPTS
    attempts, then reported in the Ready condition (with the way out) and retried only every
    RECONCILE_INTERVAL_SECONDS, so a backing service that is gone for good neither spins the
    operator nor deletes what it must not, and a user can end the wait."""
    attempts = retry + 1
    if attempts < SETTINGS.cleanup_attempts:
        return kopf.TemporaryError(str(exc), delay=SETTINGS.retry_delay_seconds)
    RECONCILIATIONS.labels(kind, "CleanupFailed").inc()
    message = (
        f"cleanup failed {attempts} times: {exc}. The resource is deleted once it succeeds; to "
        f"delete it without cleaning up, annotate it {builders.SKIP_CLEANUP_ANNOTATION}=true"
    )
    _set_ready(patch, status, meta, Condition("False", "CleanupFailed", message), logger)
    return kopf.TemporaryError(str(exc), delay=SETTINGS.reconcile_interval_seconds)


async def _claimant(
    objects: CustomObjects, body: kopf.Body, key: Callable[[Mapping[str, Any]], object]
) -> Mapping[str, Any] | None:
    """Another resource of the kind that owns the broker object `body` names (see
    builders.first_claimant), in the namespaces the operator watches."""
    mine = key(body)
    rivals = [o for o in await objects.list_watched(SETTINGS.namespaces) if key(o) == mine]
    return builders.first_claimant(body, rivals)


def _topic_name(obj: Mapping[str, Any]) -> object:
    return (obj.get("spec") or {}).get("topicName") or obj["metadata"]["name"]


def _queue_key(obj: Mapping[str, Any]) -> object:
    spec = obj.get("spec") or {}
    return (spec.get("vhost") or "/", spec.get("queueName") or obj["metadata"]["name"])


def _event_topic_needs_cleanup(obj: Mapping[str, Any]) -> bool:
    return builders.event_topic_needs_cleanup(
        obj.get("spec") or {}, obj["metadata"], strimzi=SETTINGS.strimzi_mode
    )


def _notification_queue_needs_cleanup(obj: Mapping[str, Any]) -> bool:
    return builders.notification_queue_needs_cleanup(
        obj.get("spec") or {}, obj["metadata"], topology=SETTINGS.topology_mode
    )


# ---- EventTopic -------------------------------------------------------------------------------


@reconciled(EVENT_TOPICS, needs_finalizer=_event_topic_needs_cleanup)
async def reconcile_event_topic(
    body: kopf.Body,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    desired = TopicSpec.from_resource(spec, meta["name"])
    namespace = meta["namespace"]
    patch.status["topicName"] = desired.name
    try:
        owner = await _claimant(_backends(memo).event_topics, body, _topic_name)
        if owner is not None:
            condition = builders.conflict_condition("EventTopic", f"topic {desired.name}", owner)
        elif SETTINGS.strimzi_kafka_cluster:
            condition = await _reconcile_kafka_topic(
                _backends(memo),
                body,
                desired,
                namespace,
                SETTINGS.strimzi_kafka_cluster,
                patch,
                logger,
            )
        else:
            condition = await _reconcile_topic_directly(
                _backends(memo).kafka, body, desired, patch, logger
            )
    except (KafkaUnavailable, KubeUnavailable) as exc:
        raise _unavailable("EventTopic", patch, status, meta, exc) from exc
    except (KafkaRequestRejected, KubeRequestRejected) as exc:
        condition = Condition("False", "Rejected", str(exc))
    RECONCILIATIONS.labels("EventTopic", condition.reason).inc()
    _set_ready(patch, status, meta, condition, logger)


async def _reconcile_topic_directly(
    kafka: KafkaAdmin, body: kopf.Body, desired: TopicSpec, patch: kopf.Patch, logger: kopf.Logger
) -> Condition:
    patch.status["mode"] = "KafkaAdmin"
    observed = await asyncio.to_thread(kafka.describe_topic, desired.name)
    plan = builders.plan_topic(desired, observed)
    if plan.refusal is None and plan.changes:
        await asyncio.to_thread(kafka.apply, desired, plan)
        summary = builders.describe_plan(plan, desired)
        logger.info(summary)
        _event(logger, body, "Normal", "TopicChanged", summary)
        observed = await asyncio.to_thread(kafka.describe_topic, desired.name)
    if observed is not None:
        patch.status["partitions"] = observed.partitions
        patch.status["replicationFactor"] = observed.replication_factor
    if plan.refusal is not None:
        return plan.refusal
    return Condition("True", "TopicReady", f"topic {desired.name} matches the spec")


async def _reconcile_kafka_topic(
    backends: Backends,
    body: kopf.Body,
    desired: TopicSpec,
    namespace: str,
    cluster: str,
    patch: kopf.Patch,
    logger: kopf.Logger,
) -> Condition:
    patch.status["mode"] = "Strimzi"
    name = body["metadata"]["name"]
    patch.status["kafkaTopic"] = name
    existing = await backends.kafka_topics.get(namespace, name)
    if existing is None:
        topic = builders.build_kafka_topic(body, desired, cluster=cluster, namespace=namespace)
        try:
            await backends.kafka_topics.create(namespace, topic)
        except KubeRequestRejected as exc:
            if exc.status != 409:
                raise
            # Created meanwhile by another reconcile: compare it on the next attempt.
            raise kopf.TemporaryError("KafkaTopic created concurrently", delay=1) from exc
        _event(logger, body, "Normal", "KafkaTopicCreated", f"KafkaTopic {name}")
        return Condition("Unknown", "WaitingForStrimzi", "KafkaTopic created")
    update, refusal = builders.plan_kafka_topic_update(desired, existing, body["metadata"]["uid"])
    if refusal is not None:
        return refusal
    if update is not None:
        await backends.kafka_topics.patch(namespace, name, update)
        return Condition("Unknown", "WaitingForStrimzi", "KafkaTopic updated")
    return builders.mirror_kafka_topic_status(existing)


@kopf.on.delete(
    GROUP, VERSION, EVENT_TOPICS, when=lambda body, **_: _event_topic_needs_cleanup(body)
)
@serialized
async def delete_event_topic(
    body: kopf.Body,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    retry: int,
    **_: Any,
) -> None:
    """Only for EventTopics that need it (builders.event_topic_needs_cleanup): kopf puts its
    finalizer on no other, so they are deleted without the operator. In Strimzi mode the
    finalizer goes only once the KafkaTopic is gone, so nothing of the EventTopic outlives it."""
    desired = TopicSpec.from_resource(spec, meta["name"])
    backends = _backends(memo)
    try:
        owner = await _claimant(backends.event_topics, body, _topic_name)
        if owner is not None:
            logger.info(
                f"left topic {desired.name} alone: it belongs to {owner['metadata']['name']}"
            )
        elif SETTINGS.strimzi_kafka_cluster:
            held = await _delete_kafka_topic(backends.kafka_topics, desired, meta)
            if held:
                raise _waiting_for_strimzi(patch, status, meta, retry, logger)
        elif await asyncio.to_thread(backends.kafka.delete_topic, desired.name):
            logger.info(f"deleted topic {desired.name}")
    except (KafkaUnavailable, KubeUnavailable, KafkaRequestRejected, KubeRequestRejected) as exc:
        raise _cleanup_failed("EventTopic", patch, status, meta, retry, exc, logger) from exc


async def _delete_kafka_topic(
    kafka_topics: CustomObjects, desired: TopicSpec, meta: kopf.Meta
) -> bool:
    """Delete the EventTopic's KafkaTopic (unmanaged first for Retain, so Strimzi keeps the
    topic); whether it still exists, held by Strimzi's finalizer until Strimzi has let it go."""
    namespace, name = meta["namespace"], meta["name"]
    existing = await kafka_topics.get(namespace, name)
    owners = (existing or {}).get("metadata", {}).get("ownerReferences") or []
    if existing is None or not any(o.get("uid") == meta["uid"] for o in owners):
        return False
    annotations = existing["metadata"].get("annotations") or {}
    if (
        desired.deletion_policy == "Retain"
        and annotations.get(STRIMZI_MANAGED_ANNOTATION) != "false"
    ):
        await kafka_topics.patch(
            namespace, name, {"metadata": {"annotations": {STRIMZI_MANAGED_ANNOTATION: "false"}}}
        )
    if existing["metadata"].get("deletionTimestamp"):
        return True  # deleted on an earlier try, and still there as just read
    await kafka_topics.delete(namespace, name)
    # Without a finalizer of Strimzi's the KafkaTopic is gone at once, and so is the wait.
    return await kafka_topics.get(namespace, name) is not None


def _waiting_for_strimzi(
    patch: kopf.Patch, status: kopf.Status, meta: kopf.Meta, retry: int, logger: kopf.Logger
) -> kopf.TemporaryError:
    """The EventTopic stays until Strimzi has deleted its KafkaTopic: looked at again soon and
    then less often (up to RETRY_DELAY_SECONDS); after CLEANUP_ATTEMPTS looks the Ready
    condition says what it waits for and the way out when Strimzi no longer runs."""
    message = f"waiting for Strimzi to delete KafkaTopic {meta['name']}"
    if retry + 1 >= SETTINGS.cleanup_attempts:
        RECONCILIATIONS.labels("EventTopic", "WaitingForStrimzi").inc()
        way_out = (
            f"{message}. If Strimzi's topic operator no longer runs, annotate the EventTopic "
            f"{builders.SKIP_CLEANUP_ANNOTATION}=true and remove the KafkaTopic's finalizer"
        )
        _set_ready(patch, status, meta, Condition("False", "WaitingForStrimzi", way_out), logger)
    delay = builders.backoff_seconds(retry, SETTINGS.retry_delay_seconds)
    return kopf.TemporaryError(message, delay=delay)


if SETTINGS.strimzi_kafka_cluster:

    @kopf.on.event(
        STRIMZI_GROUP, STRIMZI_VERSION, "kafkatopics", labels={OWNER_LABEL: kopf.PRESENT}
    )
    async def mirror_kafka_topic(type: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        """Copy the Strimzi topic operator's verdict into the owning EventTopic's status."""
        if type == "DELETED":
            return
        namespace = body["metadata"]["namespace"]
        backends = _backends(memo)
        owner_name = builders.controller_name(body, "EventTopic")
        if owner_name is None:
            return
        owner = await backends.event_topics.get(namespace, owner_name)
        if owner is None or owner["metadata"].get("deletionTimestamp"):
            return
        desired = TopicSpec.from_resource(owner.get("spec") or {}, owner_name)
        _unused, refusal = builders.plan_kafka_topic_update(desired, body, owner["metadata"]["uid"])
        condition = refusal or builders.mirror_kafka_topic_status(body)
        owner_status = owner.get("status") or {}
        generation = owner["metadata"].get("generation")
        update: dict[str, Any] = {
            "conditions": builders.with_condition(
                owner_status.get("conditions"),
                condition,
                generation=generation,
                now=builders.now_utc(),
            )
        }
        strimzi_status = body.get("status") or {}
        if strimzi_status.get("topicId"):
            update["topicId"] = strimzi_status["topicId"]
        if condition.status == "True":
            update["observedGeneration"] = generation
            update["partitions"] = body["spec"].get("partitions")
            if body["spec"].get("replicas"):
                update["replicationFactor"] = body["spec"]["replicas"]
        await backends.event_topics.patch_status(namespace, owner_name, update)


# ---- NotificationQueue ------------------------------------------------------------------------


@reconciled(NOTIFICATION_QUEUES, needs_finalizer=_notification_queue_needs_cleanup)
async def reconcile_notification_queue(
    body: kopf.Body,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """Declare (or render) the whole topology and read the message counts; the repair loop
    repeats it, so a queue deleted behind the operator's back comes back."""
    queue = QueueSpec.from_resource(spec, meta["name"])
    namespace = meta["namespace"]
    backends = _backends(memo)
    declarations = builders.build_queue_topology(queue)
    patch.status["queues"] = {
        "work": queue.queue_name,
        "retry": [d.name for d in declarations if d.role == "retry"],
        "deadLetter": queue.dead_letter_queue,
    }
    try:
        owner = await _claimant(backends.notification_queues, body, _queue_key)
        if owner is not None:
            condition = builders.conflict_condition(
                "NotificationQueue", f"queue {queue.queue_name} (vhost {queue.vhost})", owner
            )
        elif SETTINGS.rabbitmq_topology_cluster:
            patch.status["mode"] = "TopologyOperator"
            condition = await _render_topology(
                backends, body, queue, namespace, SETTINGS.rabbitmq_topology_cluster
            )
        else:
            patch.status["mode"] = "ManagementApi"
            condition = await _declare_queues(backends.rabbit, queue, declarations, logger)
            await _drop_unused_retry_queues(backends.rabbit, queue, declarations, logger)
        if owner is None:
            await _refresh_queue_counts(backends.rabbit, queue, patch)
    except (RabbitUnavailable, KubeUnavailable) as exc:
        raise _unavailable("NotificationQueue", patch, status, meta, exc) from exc
    except (RabbitRequestRejected, KubeRequestRejected) as exc:
        condition = Condition("False", "Rejected", str(exc))
    RECONCILIATIONS.labels("NotificationQueue", condition.reason).inc()
    _set_ready(patch, status, meta, condition, logger)


async def _declare_queues(
    rabbit: RabbitManagement,
    queue: QueueSpec,
    declarations: list[builders.QueueDeclaration],
    logger: kopf.Logger,
) -> Condition:
    conflicts: list[str] = []
    for declaration in declarations:
        existing = await rabbit.get_queue(queue.vhost, declaration.name)
        if existing is not None:
            mismatches = builders.queue_mismatches(declaration, existing)
            if mismatches:
                conflicts.append(builders.describe_mismatches(declaration.name, mismatches))
            continue
        try:
            if await rabbit.declare_queue(queue.vhost, declaration):
                logger.info(f"declared {declaration.role} queue {declaration.name}")
        except QueueConflict as exc:
            conflicts.append(f"queue {declaration.name}: {exc}")
    if conflicts:
        return Condition("False", "QueueArgumentsConflict", "; ".join(conflicts))
    return Condition(
        "True", "QueuesDeclared", f"{len(declarations)} queues declared as the spec says"
    )


async def _drop_unused_retry_queues(
    rabbit: RabbitManagement,
    queue: QueueSpec,
    declarations: list[builders.QueueDeclaration],
    logger: kopf.Logger,
) -> None:
    """Delete retry queues of this work queue whose delay left the spec, once they are empty
    (a message parked in one still comes back to the work queue until then)."""
    wanted = {d.name for d in declarations}
    for existing in await rabbit.list_queues(queue.vhost):
        name = existing.get("name", "")
        if (
            builders.is_retry_queue_of(queue.queue_name, name)
            and name not in wanted
            and await rabbit.delete_queue_if_empty(existing, queue.vhost)
        ):
            logger.info(f"deleted retry queue {name}, no longer in the spec")


async def _render_topology(
    backends: Backends, body: kopf.Body, queue: QueueSpec, namespace: str, cluster: str
) -> Condition:
    """Create or update the owned Queue and Policy objects; delete the owned ones no longer
    wanted (a retry delay removed from the spec)."""
    objects = builders.build_topology_objects(body, queue, cluster=cluster, namespace=namespace)
    owner_name = body["metadata"]["name"]
    for kind, api in (("Queue", backends.topology_queues), ("Policy", backends.topology_policies)):
        wanted = {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}
        owned = await api.list(namespace, f"{OWNER_LABEL}={builders.owner_label(owner_name)}")
        existing = {o["metadata"]["name"]: o for o in owned}
        for name, obj in wanted.items():
            if name not in existing:
                await api.create(namespace, obj)
            elif _differs(existing[name].get("spec") or {}, obj["spec"]):
                await api.patch(namespace, name, {"spec": obj["spec"]})
        for name in sorted(set(existing) - set(wanted)):
            await api.delete(namespace, name)
    # Rendering is not declaring: the messaging topology operator declares the queues and
    # reports each object's outcome in its status; the repair loop reads it again later.
    rendered = [
        {**found, "kind": kind}
        for kind, api in (
            ("Queue", backends.topology_queues),
            ("Policy", backends.topology_policies),
        )
        for found in await api.list(namespace, f"{OWNER_LABEL}={builders.owner_label(owner_name)}")
    ]
    pending = builders.topology_pending(rendered)
    if pending:
        return Condition(
            "False",
            "TopologyPending",
            f"the RabbitMQ messaging topology operator has not reported Ready for "
            f"{len(pending)} of {len(objects)} objects: {'; '.join(pending)}",
        )
    return Condition(
        "True",
        "TopologyReady",
        f"{len(objects)} Queue and Policy objects Ready on RabbitmqCluster {cluster}",
    )


def _differs(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether a field we set differs (fields the API server defaulted are not ours to judge)."""
    return any(current.get(key) != value for key, value in wanted.items())


async def _refresh_queue_counts(
    rabbit: RabbitManagement, queue: QueueSpec, patch: kopf.Patch
) -> None:
    work = await rabbit.queue_counts(queue.vhost, queue.queue_name)
    dead = await rabbit.queue_counts(queue.vhost, queue.dead_letter_queue)
    if work is not None:
        patch.status["messages"] = work.messages
        patch.status["messagesReady"] = work.messages_ready
        patch.status["messagesUnacknowledged"] = work.messages_unacknowledged
        patch.status["consumers"] = work.consumers
    if dead is not None:
        patch.status["deadLetterMessages"] = dead.messages
    patch.status["lastRefreshTime"] = builders.rfc3339(builders.now_utc())


@kopf.on.delete(
    GROUP,
    VERSION,
    NOTIFICATION_QUEUES,
    when=lambda body, **_: _notification_queue_needs_cleanup(body),
)
@serialized
async def delete_notification_queue(
    body: kopf.Body,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    retry: int,
    **_: Any,
) -> None:
    """Only for NotificationQueues with deletionPolicy Delete in management API mode (builders.
    notification_queue_needs_cleanup): the others carry no finalizer."""
    queue = QueueSpec.from_resource(spec, meta["name"])
    backends = _backends(memo)
    rabbit = backends.rabbit
    try:
        owner = await _claimant(backends.notification_queues, body, _queue_key)
        if owner is not None:
            logger.info(
                f"left queue {queue.queue_name} alone: it belongs to {owner['metadata']['name']}"
            )
            return
        for declaration in builders.build_queue_topology(queue):
            if declaration.role != "dead-letter" and await rabbit.delete_queue(
                queue.vhost, declaration.name
            ):
                logger.info(f"deleted {declaration.role} queue {declaration.name}")
    except (RabbitUnavailable, RabbitRequestRejected, KubeUnavailable, KubeRequestRejected) as exc:
        raise _cleanup_failed("NotificationQueue", patch, status, meta, retry, exc, logger) from exc


# ---- WorkerAutoscaler -------------------------------------------------------------------------


@reconciled(WORKER_AUTOSCALERS, interval=SETTINGS.autoscaler_interval_seconds)
async def autoscale(
    body: kopf.Body,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    backends = _backends(memo)
    namespace = meta["namespace"]
    target = spec["targetRef"]["name"]
    now = builders.now_utc()
    try:
        scale = await backends.scaler.read(namespace, target)
        if scale is None:
            _set_ready(
                patch,
                status,
                meta,
                Condition("False", "TargetNotFound", f"Deployment {target} does not exist"),
                logger,
            )
            return
        measured = await _measure(backends, spec["trigger"])
    except (KafkaUnavailable, RabbitUnavailable, KubeUnavailable) as exc:
        raise _unavailable("WorkerAutoscaler", patch, status, meta, exc) from exc
    except (KafkaRequestRejected, RabbitRequestRejected, KubeRequestRejected) as exc:
        _set_ready(patch, status, meta, Condition("False", "MetricUnavailable", str(exc)), logger)
        return
    if isinstance(measured, str):
        _set_ready(patch, status, meta, Condition("False", "MetricUnavailable", measured), logger)
        return
    metric_name, metric, per_replica, cap = measured

    policy = scaling.ScalingPolicy(
        min_replicas=int(spec.get("minReplicas", 1)),
        max_replicas=int(spec["maxReplicas"]),
        cooldown_seconds=int(spec.get("cooldownSeconds", 300)),
        stabilization_seconds=int(spec.get("stabilizationSeconds", 300)),
    )
    recommended = scaling.recommend_replicas(
        metric,
        per_replica,
        min_replicas=policy.min_replicas,
        max_replicas=policy.max_replicas,
        partition_cap=cap,
    )
    decision = scaling.decide(
        policy,
        recommended=recommended,
        current=scale.desired,
        now=now,
        last_scale=builders.parse_rfc3339(status.get("lastScaleTime") or meta["creationTimestamp"]),
        history=[
            scaling.Recommendation(builders.parse_rfc3339(r["time"]), int(r["replicas"]))
            for r in status.get("recommendations") or ()
        ],
    )
    message = (
        f"{metric_name}={metric} recommends {recommended} replica(s) "
        f"(min {policy.min_replicas}, max {policy.max_replicas}); Deployment {target} "
    )
    if decision.scales(scale.desired):
        try:
            await backends.scaler.set_replicas(namespace, target, decision.replicas)
        except KubeUnavailable as exc:
            raise _unavailable("WorkerAutoscaler", patch, status, meta, exc) from exc
        except KubeRequestRejected as exc:
            _set_ready(patch, status, meta, Condition("False", "ScaleFailed", str(exc)), logger)
            return
        direction = "up" if decision.replicas > scale.desired else "down"
        SCALINGS.labels(direction).inc()
        scaled = f"scaled {direction} from {scale.desired} to {decision.replicas}"
        logger.info(f"{target} {scaled}: {metric_name}={metric}")
        _event(
            logger,
            body,
            "Normal",
            "Scaled",
            f"Deployment {target} {scaled}: {metric_name}={metric}",
        )
        patch.status["lastScaleTime"] = builders.rfc3339(now)
        message += scaled
    else:
        message += f"stays at {scale.desired} ({decision.reason})"
    patch.status["metricName"] = metric_name
    patch.status["metricValue"] = metric
    patch.status["desiredReplicas"] = recommended
    patch.status["currentReplicas"] = decision.replicas
    patch.status["recommendations"] = [
        {"time": builders.rfc3339(r.at), "replicas": r.replicas} for r in decision.recommendations
    ]
    _set_ready(patch, status, meta, Condition("True", decision.reason, message))


async def _measure(
    backends: Backends, trigger: Mapping[str, Any]
) -> tuple[str, int, int, int | None] | str:
    """(metric name, value, per-replica target, partition cap), or why there is no value."""
    if trigger.get("kafkaLag"):
        lag = trigger["kafkaLag"]
        offsets = await asyncio.to_thread(
            backends.kafka.group_offsets, lag["topic"], lag["consumerGroup"]
        )
        if offsets is None:
            return f"topic {lag['topic']} does not exist"
        value = scaling.consumer_group_lag(offsets, lag.get("offsetResetPolicy", "earliest"))
        return "kafkaLag", value, int(lag["lagPerReplica"]), len(offsets)
    depth = trigger["queueDepth"]
    counts = await backends.rabbit.queue_counts(depth.get("vhost", "/"), depth["queue"])
    if counts is None:
        return f"queue {depth['queue']} does not exist"
    return "queueDepth", counts.messages, int(depth["messagesPerReplica"]), None
