"""Reading the topics' history: every message they hold, from the start to where they end now.

`read_history` assigns every partition of the topics from its first offset (no consumer
group: nothing is committed, no running consumer is disturbed) and yields the messages in
batches until each partition reaches the end offset it had when the read began; what arrives
later is the running consumer's. Kafka's retention bounds what a replay can see: a topic
whose retention dropped old segments replays only what is left.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from services.kit.kafka import client_config


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes


def read_history(
    bootstrap: str, topics: Iterable[str], batch_size: int = 500, timeout: float = 10.0
) -> Iterator[list[Record]]:
    consumer = Consumer(
        client_config(
            bootstrap,
            **{
                "group.id": f"analytics-replay-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
                "log_level": 0,
            },
        )
    )
    try:
        ends: dict[tuple[str, int], int] = {}
        assignment = []
        for topic in topics:
            metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
            if metadata is None or metadata.error is not None:
                continue  # never created: nothing to replay
            for partition in metadata.partitions:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout
                )
                if high > low:
                    ends[(topic, partition)] = high
                    assignment.append(TopicPartition(topic, partition, OFFSET_BEGINNING))
        if not assignment:
            return
        consumer.assign(assignment)
        while ends:
            batch = []
            for message in consumer.consume(batch_size, timeout):
                if message.error() is not None:
                    raise RuntimeError(f"reading the topics failed: {message.error()}")
                key = (message.topic() or "", message.partition() or 0)
                end = ends.get(key)
                offset = message.offset() or 0
                if end is None or offset >= end:
                    continue
                batch.append(Record(key[0], key[1], offset, message.value() or b""))
            # Done with a partition once its position passed the end it had (by position, not
            # by the last message's offset: control records and compaction leave gaps).
            for topic, partition in list(ends):
                position = consumer.position([TopicPartition(topic, partition)])[0].offset
                if position >= ends[(topic, partition)]:
                    del ends[(topic, partition)]
                    consumer.incremental_unassign([TopicPartition(topic, partition)])
            if batch:
                yield batch
    finally:
        consumer.close()
