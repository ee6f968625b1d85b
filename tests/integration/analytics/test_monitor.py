"""The broker monitor: real Kafka lag that drains, real RabbitMQ queue depths."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from devstack.testing import KafkaServer, RabbitMQServer
from tests.support import Bearer, eventually


async def _group(client: httpx.AsyncClient, admin: Bearer, group_id: str) -> dict[str, Any] | None:
    response = await client.get("/analytics/kafka", headers=admin.headers)
    assert response.status_code == 200, response.text
    groups = {g["groupId"]: g for g in response.json()["groups"]}
    return groups.get(group_id)


async def test_kafka_shows_topics_and_a_group_lag_that_drains(
    client: httpx.AsyncClient, admin: Bearer, kafka_server: KafkaServer
) -> None:
    topic, group = f"monitor-{uuid.uuid4().hex[:8]}", f"monitor-group-{uuid.uuid4().hex[:8]}"
    kafka_admin = AdminClient({"bootstrap.servers": kafka_server.bootstrap})
    created = kafka_admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    created[topic].result(timeout=30)
    producer = Producer({"bootstrap.servers": kafka_server.bootstrap})
    for n in range(6):
        producer.produce(topic, key=str(n), value=b"x", partition=n % 2)
    assert producer.flush(30) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_server.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    try:
        # The group has read nothing yet: its committed offsets are the start.
        consumer.commit(
            offsets=[TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)], asynchronous=False
        )
        response = await client.get("/analytics/kafka", headers=admin.headers)
        body = response.json()
        topics = {t["name"]: t for t in body["topics"]}
        assert topics[topic]["messages"] == 6
        assert [p["endOffset"] for p in topics[topic]["partitions"]] == [3, 3]
        assert not any(name.startswith("__") for name in topics)
        lagging = await _group(client, admin, group)
        assert lagging is not None
        assert lagging["lag"] == 6
        assert lagging["topics"] == [{"topic": topic, "committed": 0, "endOffset": 6, "lag": 6}]

        consumer.commit(
            offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 3)], asynchronous=False
        )

        async def drained() -> bool:
            found = await _group(client, admin, group)
            return found is not None and found["lag"] == 0

        await eventually(drained, within=15, what="the group's lag to drain")
    finally:
        consumer.close()


async def test_queues_show_their_depth_and_consumers(
    client: httpx.AsyncClient,
    admin: Bearer,
    rabbitmq_server: RabbitMQServer,
    vhost: tuple[str, str],
) -> None:
    queue = f"monitor-{uuid.uuid4().hex[:8]}"
    auth = (rabbitmq_server.user, rabbitmq_server.password)
    async with httpx.AsyncClient(
        base_url=rabbitmq_server.management_url, auth=auth, timeout=10
    ) as api:
        declared = await api.put(
            f"/api/queues/{vhost[0]}/{queue}",
            json={"durable": True, "arguments": {"x-queue-type": "quorum"}},
        )
        declared.raise_for_status()
        for n in range(3):
            published = await api.post(
                f"/api/exchanges/{vhost[0]}/amq.default/publish",
                json={
                    "properties": {},
                    "routing_key": queue,
                    "payload": f"message {n}",
                    "payload_encoding": "string",
                },
            )
            published.raise_for_status()
            assert published.json()["routed"] is True

    async def shown() -> dict[str, Any] | None:
        response = await client.get("/analytics/queues", headers=admin.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["vhost"] == vhost[0]
        found = {q["name"]: q for q in body["queues"]}.get(queue)
        return found if found and found["messages"] == 3 else None

    # The management API refreshes queue statistics every few seconds.
    state = await eventually(shown, within=30, what="the queue's depth")
    assert (state["type"], state["ready"], state["consumers"]) == ("quorum", 3, 0)
