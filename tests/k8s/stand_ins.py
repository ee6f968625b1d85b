"""The third-party operators a chart profile relies on, played by the test where none runs.

The session's control plane runs no Strimzi and no RabbitMQ messaging topology operator, so a
test that installs a profile in those modes plays their part against the session's Kafka and
RabbitMQ, one namespace at a time, by calling `step()` while it waits:

- `StrimziTopicOperator`: Strimzi's topic operator of the release's `Kafka`. While that Kafka
  exists and is not being deleted (the topic operator runs in its entity operator, which goes
  with it), it holds each KafkaTopic with Strimzi's finalizer, creates the topic (the spec's
  partitions, one replica: the session's Kafka has one broker), reports Ready for the current
  generation, and on deletion deletes the topic unless the KafkaTopic is unmanaged
  (`strimzi.io/managed: "false"`) before letting it go. Once the Kafka is gone it does nothing,
  as the real one would, so a KafkaTopic still being deleted then stays.
- `TopologyOperator`: the messaging topology operator. It declares each Queue object's queue in
  its vhost (type and durability) and reports every Queue and Policy Ready. It holds no
  finalizer: it runs outside the release, for the whole cluster, and lets go of objects whose
  RabbitmqCluster is gone, so it never holds a release's namespace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote

import httpx
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from kubernetes import client
from kubernetes.client.exceptions import ApiException

STRIMZI_GROUP, STRIMZI_VERSION = "kafka.strimzi.io", "v1"
STRIMZI_FINALIZER = "strimzi.io/topic-operator"
TOPOLOGY_GROUP, TOPOLOGY_VERSION = "rabbitmq.com", "v1beta1"
READY_SINCE = "2026-01-01T00:00:00Z"


def _items(
    objects: client.CustomObjectsApi, group: str, version: str, namespace: str, plural: str
) -> list[dict[str, Any]]:
    listed = cast(
        dict[str, Any], objects.list_namespaced_custom_object(group, version, namespace, plural)
    )
    return list(listed["items"])


def _ready_status(obj: dict[str, Any]) -> dict[str, Any]:
    condition = {"type": "Ready", "status": "True", "lastTransitionTime": READY_SINCE}
    return {
        "status": {"observedGeneration": obj["metadata"]["generation"], "conditions": [condition]}
    }


def _reported(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return bool(status.get("observedGeneration") == obj["metadata"]["generation"])


def _tolerate_gone(call: Any, *args: Any, **kwargs: Any) -> None:
    """An object deleted or changed meanwhile is looked at again on the next step."""
    try:
        call(*args, **kwargs)
    except ApiException as exc:
        if exc.status not in (404, 409):
            raise


@dataclass
class StrimziTopicOperator:
    api: client.ApiClient
    namespace: str
    bootstrap: str
    admin: AdminClient = field(init=False)

    def __post_init__(self) -> None:
        self.admin = AdminClient({"bootstrap.servers": self.bootstrap})

    def running(self, objects: client.CustomObjectsApi) -> bool:
        kafkas = _items(objects, STRIMZI_GROUP, STRIMZI_VERSION, self.namespace, "kafkas")
        return any(not k["metadata"].get("deletionTimestamp") for k in kafkas)

    def step(self) -> None:
        objects = client.CustomObjectsApi(self.api)
        if not self.running(objects):
            return
        topics = _items(objects, STRIMZI_GROUP, STRIMZI_VERSION, self.namespace, "kafkatopics")
        if not any(map(self._has_work, topics)):
            return
        admin = self.admin
        existing = set(admin.list_topics(timeout=10).topics)
        missing: list[NewTopic] = []
        for topic in topics:
            meta = topic["metadata"]
            finalizers = list(meta.get("finalizers") or [])
            name = topic["spec"].get("topicName") or meta["name"]
            if meta.get("deletionTimestamp"):
                if STRIMZI_FINALIZER not in finalizers:
                    continue
                unmanaged = (meta.get("annotations") or {}).get("strimzi.io/managed") == "false"
                if not unmanaged and name in existing:
                    admin.delete_topics([name])[name].result(timeout=20)
                finalizers.remove(STRIMZI_FINALIZER)
                self._patch(objects, meta, {"metadata": {"finalizers": finalizers}})
                continue
            if STRIMZI_FINALIZER not in finalizers:
                self._patch(
                    objects, meta, {"metadata": {"finalizers": [*finalizers, STRIMZI_FINALIZER]}}
                )
            if name not in existing:
                missing.append(NewTopic(name, int(topic["spec"].get("partitions") or 1), 1))
            if not _reported(topic) and name in existing:
                _tolerate_gone(
                    objects.patch_namespaced_custom_object_status,
                    STRIMZI_GROUP, STRIMZI_VERSION, self.namespace, "kafkatopics",
                    meta["name"], _ready_status(topic),
                )  # fmt: skip
        # Created in one request; each is reported Ready on the next step.
        if missing:
            for future in admin.create_topics(missing).values():
                future.result(timeout=30)

    @staticmethod
    def _has_work(topic: dict[str, Any]) -> bool:
        held = STRIMZI_FINALIZER in (topic["metadata"].get("finalizers") or ())
        if topic["metadata"].get("deletionTimestamp"):
            return held
        return not held or not _reported(topic)

    def _patch(
        self, objects: client.CustomObjectsApi, meta: dict[str, Any], body: dict[str, Any]
    ) -> None:
        body["metadata"]["resourceVersion"] = meta["resourceVersion"]
        _tolerate_gone(
            objects.patch_namespaced_custom_object,
            STRIMZI_GROUP, STRIMZI_VERSION, self.namespace, "kafkatopics", meta["name"], body,
            _content_type="application/merge-patch+json",
        )  # fmt: skip


@dataclass
class TopologyOperator:
    api: client.ApiClient
    namespace: str
    management_url: str
    auth: tuple[str, str]

    def step(self) -> None:
        objects = client.CustomObjectsApi(self.api)
        queues = _items(objects, TOPOLOGY_GROUP, TOPOLOGY_VERSION, self.namespace, "queues")
        policies = _items(objects, TOPOLOGY_GROUP, TOPOLOGY_VERSION, self.namespace, "policies")
        with httpx.Client(base_url=self.management_url, auth=self.auth, timeout=10) as http:
            for queue in queues:
                if queue["metadata"].get("deletionTimestamp") or _reported(queue):
                    continue
                spec = queue["spec"]
                http.put(
                    f"/api/queues/{quote(spec.get('vhost') or '/', safe='')}/{spec['name']}",
                    json={
                        "durable": spec.get("durable", True),
                        "arguments": {"x-queue-type": spec.get("type") or "classic"},
                    },
                ).raise_for_status()
                self._ready(objects, "queues", queue)
        for policy in policies:
            if not policy["metadata"].get("deletionTimestamp") and not _reported(policy):
                self._ready(objects, "policies", policy)

    def _ready(self, objects: client.CustomObjectsApi, plural: str, obj: dict[str, Any]) -> None:
        _tolerate_gone(
            objects.patch_namespaced_custom_object_status,
            TOPOLOGY_GROUP, TOPOLOGY_VERSION, self.namespace, plural, obj["metadata"]["name"],
            _ready_status(obj),
        )  # fmt: skip
