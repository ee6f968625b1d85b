"""The Kafka Admin API calls the operator needs, on confluent-kafka's AdminClient.

Calls are blocking (librdkafka futures), so the handlers run them in a worker thread. Failures
come out as two types: `KafkaUnavailable` (the broker did not answer: retry later) and
`KafkaRequestRejected` (the broker answered no, e.g. an invalid config: retrying the same
request cannot help, so it is reported until the spec changes).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from typing import TypeVar

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
    TopicDescription,
)

from realtimeorder_operator.builders import ObservedTopic, TopicPlan, TopicSpec
from realtimeorder_operator.scaling import PartitionOffsets

T = TypeVar("T")

_UNAVAILABLE = {
    KafkaError._TRANSPORT,
    KafkaError._TIMED_OUT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._RESOLVE,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NOT_CONTROLLER,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.BROKER_NOT_AVAILABLE,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.NOT_COORDINATOR,
}


class KafkaUnavailable(Exception):
    """The broker could not be reached or did not answer in time."""


class KafkaRequestRejected(Exception):
    """The broker refused the request; `code` is Kafka's error name (e.g. INVALID_CONFIG)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _error_of(exc: KafkaException) -> KafkaError | None:
    first = exc.args[0] if exc.args else None
    return first if isinstance(first, KafkaError) else None


def _result(future: Future[T], what: str) -> T:
    try:
        return future.result()
    except KafkaException as exc:
        error = _error_of(exc)
        if error is None or error.code() in _UNAVAILABLE or error.retriable():
            raise KafkaUnavailable(f"{what}: {exc}") from exc
        raise KafkaRequestRejected(error.name(), f"{what}: {error.name()}: {error.str()}") from exc


def _is_topic_override(entry: ConfigEntry) -> bool:
    # librdkafka hands the source over as a plain int, the Python API documents the enum.
    source: object = entry.source
    value = source.value if isinstance(source, ConfigSource) else source
    return bool(value == ConfigSource.DYNAMIC_TOPIC_CONFIG.value)


class KafkaAdmin:
    def __init__(
        self, bootstrap: str, *, timeout: float = 10.0, security: Mapping[str, str] | None = None
    ) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout
        self.security = dict(security or {})
        self._client = AdminClient(
            {
                **self.security,
                "bootstrap.servers": bootstrap,
                "client.id": "realtimeorder-operator",
                "socket.timeout.ms": int(timeout * 1000),
            }
        )

    def describe_topic(self, name: str) -> ObservedTopic | None:
        """The topic's partitions, replication factor and own config overrides; None if absent."""
        description = self._describe(name)
        if description is None:
            return None
        partitions = description.partitions
        resource = ConfigResource(ResourceType.TOPIC, name)
        entries: Mapping[str, ConfigEntry] = _result(
            self._client.describe_configs([resource], request_timeout=self.timeout)[resource],
            f"describe config of topic {name}",
        )
        return ObservedTopic(
            partitions=len(partitions),
            replication_factor=len(partitions[0].replicas) if partitions else 0,
            config={
                key: entry.value
                for key, entry in entries.items()
                if _is_topic_override(entry) and entry.value is not None
            },
        )

    def apply(self, desired: TopicSpec, plan: TopicPlan) -> None:
        """Carry out a plan made by `builders.plan_topic`."""
        if plan.refusal is not None:
            return
        name = desired.name
        if plan.create:
            topic = NewTopic(
                name,
                num_partitions=desired.partitions,
                replication_factor=desired.replication_factor or -1,
                config=dict(desired.config),
            )
            futures = self._client.create_topics(
                [topic], operation_timeout=self.timeout, request_timeout=self.timeout
            )
            try:
                _result(futures[name], f"create topic {name}")
            except KafkaRequestRejected as exc:
                # Created by a concurrent reconcile: the next look compares it like any other.
                if exc.code != "TOPIC_ALREADY_EXISTS":
                    raise
            return
        if plan.partitions:
            futures = self._client.create_partitions(
                [NewPartitions(name, plan.partitions)],
                operation_timeout=self.timeout,
                request_timeout=self.timeout,
            )
            _result(futures[name], f"increase partitions of {name} to {plan.partitions}")
        if plan.set_config or plan.reset_config:
            entries = [
                ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                for key, value in plan.set_config.items()
            ] + [
                ConfigEntry(key, None, incremental_operation=AlterConfigOpType.DELETE)
                for key in plan.reset_config
            ]
            resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=entries)
            futures_by_resource = self._client.incremental_alter_configs(
                [resource], request_timeout=self.timeout
            )
            _result(futures_by_resource[resource], f"alter config of {name}")

    def delete_topic(self, name: str) -> bool:
        """Delete the topic; False when it did not exist."""
        futures = self._client.delete_topics(
            [name], operation_timeout=self.timeout, request_timeout=self.timeout
        )
        try:
            _result(futures[name], f"delete topic {name}")
        except KafkaRequestRejected as exc:
            if exc.code == "UNKNOWN_TOPIC_OR_PART":
                return False
            raise
        return True

    def group_offsets(self, topic: str, group: str) -> list[PartitionOffsets] | None:
        """Committed, earliest and latest offsets of every partition; None if no such topic.

        Committed offsets come from a consumer that never joins the group (so the group does not
        rebalance), not from AdminClient.list_consumer_group_offsets: librdkafka 2.16 crashes the
        process in that call while the broker is still creating __consumer_offsets.
        """
        description = self._describe(topic)
        if description is None:
            return None
        partitions = [TopicPartition(topic, p) for p in range(len(description.partitions))]
        consumer = Consumer(
            {
                **self.security,
                "bootstrap.servers": self.bootstrap,
                "group.id": group,
                "client.id": "realtimeorder-operator-lag",
                "enable.auto.commit": False,
                "socket.timeout.ms": int(self.timeout * 1000),
            }
        )
        try:
            committed = consumer.committed(partitions, timeout=self.timeout)
            offsets = []
            for tp in committed:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, tp.partition), timeout=self.timeout
                )
                offsets.append(
                    PartitionOffsets(
                        partition=tp.partition,
                        committed=tp.offset if tp.offset >= 0 else None,
                        log_start=low,
                        log_end=high,
                    )
                )
        except KafkaException as exc:
            raise KafkaUnavailable(f"offsets of group {group} on {topic}: {exc}") from exc
        finally:
            consumer.close()
        return offsets

    def _describe(self, topic: str) -> TopicDescription | None:
        futures = self._client.describe_topics(
            TopicCollection([topic]), request_timeout=self.timeout
        )
        try:
            description: TopicDescription = _result(futures[topic], f"describe topic {topic}")
        except KafkaRequestRejected as exc:
            if exc.code == "UNKNOWN_TOPIC_OR_PART":
                return None
            raise
        return description
