"""The broker monitor: what Kafka and RabbitMQ hold right now, for the admin dashboard.

- Kafka (`kafka_overview`): every topic but the broker's internal ones, with its partitions'
  end offsets (the admin client's `list_offsets`), and every consumer group with its committed
  offsets and lag per topic (end offset minus committed, over the partitions it committed).
  confluent-kafka's admin client is synchronous: the service runs this in a thread.
- RabbitMQ (`rabbitmq_queues`): the management API's queues of one virtual host, with depths,
  consumers and the publish, deliver and ack rates it computes.

Both raise `BrokerUnavailable` with the reason when the broker does not answer in time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from services.kit.kafka import client_config


class BrokerUnavailable(Exception):
    """A broker (or its management API) did not answer."""


@dataclass(frozen=True, slots=True)
class PartitionState:
    partition: int
    end_offset: int


@dataclass(frozen=True, slots=True)
class TopicState:
    name: str
    partitions: list[PartitionState]

    @property
    def messages(self) -> int:
        """Offsets written so far, over all partitions (retention may have removed some)."""
        return sum(p.end_offset for p in self.partitions)


@dataclass(frozen=True, slots=True)
class GroupTopicLag:
    topic: str
    committed: int
    end_offset: int
    lag: int


@dataclass(frozen=True, slots=True)
class GroupState:
    group_id: str
    state: str
    topics: list[GroupTopicLag] = field(default_factory=list)

    @property
    def lag(self) -> int:
        return sum(t.lag for t in self.topics)


@dataclass(frozen=True, slots=True)
class KafkaOverview:
    topics: list[TopicState]
    groups: list[GroupState]


def kafka_overview(bootstrap: str, timeout: float) -> KafkaOverview:
    admin = AdminClient(
        client_config(bootstrap, **{"socket.timeout.ms": int(timeout * 1000), "log_level": 0})
    )
    try:
        metadata = admin.list_topics(timeout=timeout)
        partitions = [
            TopicPartition(name, p)
            for name, topic in metadata.topics.items()
            if not name.startswith("__")
            for p in topic.partitions
        ]
        ends: dict[tuple[str, int], int] = {}
        if partitions:
            latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
            futures = admin.list_offsets({tp: latest for tp in partitions}, request_timeout=timeout)
            for tp, future in futures.items():
                ends[(tp.topic, tp.partition)] = future.result().offset
        topics = [
            TopicState(
                name,
                sorted(
                    (PartitionState(p, ends.get((name, p), 0)) for p in topic.partitions),
                    key=lambda s: s.partition,
                ),
            )
            for name, topic in sorted(metadata.topics.items())
            if not name.startswith("__")
        ]
        groups = _groups(admin, ends, timeout)
    except KafkaException as exc:
        raise BrokerUnavailable(f"Kafka at {bootstrap}: {exc}") from exc
    return KafkaOverview(topics, groups)


def _groups(
    admin: AdminClient, ends: dict[tuple[str, int], int], timeout: float
) -> list[GroupState]:
    listed = admin.list_consumer_groups(request_timeout=timeout).result()
    groups = []
    for listing in sorted(listed.valid, key=lambda g: g.group_id):
        request = [ConsumerGroupTopicPartitions(listing.group_id)]
        futures = admin.list_consumer_group_offsets(request, request_timeout=timeout)
        committed = futures[listing.group_id].result().topic_partitions or []
        per_topic: dict[str, list[tuple[int, int]]] = {}
        for tp in committed:
            if tp.offset < 0:  # nothing committed on this partition yet
                continue
            end = ends.get((tp.topic, tp.partition), tp.offset)
            per_topic.setdefault(tp.topic, []).append((tp.offset, end))
        state = getattr(listing.state, "name", str(listing.state)).lower()
        groups.append(
            GroupState(
                listing.group_id,
                state,
                [
                    GroupTopicLag(
                        topic,
                        sum(c for c, _ in offsets),
                        sum(e for _, e in offsets),
                        sum(max(e - c, 0) for c, e in offsets),
                    )
                    for topic, offsets in sorted(per_topic.items())
                ],
            )
        )
    return groups


@dataclass(frozen=True, slots=True)
class QueueState:
    name: str
    type: str
    messages: int
    ready: int
    unacknowledged: int
    consumers: int
    publish_rate: float
    deliver_rate: float
    ack_rate: float


async def rabbitmq_queues(
    url: str, auth: tuple[str, str], vhost: str, wait_seconds: float
) -> list[QueueState]:
    path = f"/api/queues/{quote(vhost, safe='')}"
    try:
        async with httpx.AsyncClient(base_url=url, auth=auth, timeout=wait_seconds) as client:
            response = await client.get(path)
    except httpx.HTTPError as exc:
        raise BrokerUnavailable(f"RabbitMQ management API at {url}: {exc!r}") from exc
    if response.status_code != 200:
        raise BrokerUnavailable(f"RabbitMQ management API at {url} answered {response.status_code}")
    return [_queue(entry) for entry in response.json()]


def _queue(entry: dict[str, Any]) -> QueueState:
    stats = entry.get("message_stats") or {}

    def rate(name: str) -> float:
        return float((stats.get(f"{name}_details") or {}).get("rate", 0.0))

    return QueueState(
        name=entry["name"],
        type=entry.get("type", "classic"),
        messages=int(entry.get("messages") or 0),
        ready=int(entry.get("messages_ready") or 0),
        unacknowledged=int(entry.get("messages_unacknowledged") or 0),
        consumers=int(entry.get("consumers") or 0),
        publish_rate=rate("publish"),
        deliver_rate=rate("deliver_get"),
        ack_rate=rate("ack"),
    )
