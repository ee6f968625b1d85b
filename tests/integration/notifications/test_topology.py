"""The queues of topology.py on a real RabbitMQ: declared twice without complaint, and a
message a worker rejects lands in notifications.dlq."""

from __future__ import annotations

import uuid

import pika
import pytest
from aiormq.exceptions import ChannelNotFoundEntity, ChannelPreconditionFailed

from services.kit.rabbit import Outgoing, Publisher, Queue, declare_queues
from services.notifications.domain import Channel
from services.notifications.topology import DEAD_LETTER_QUEUE, WORK_QUEUES, queues

pytestmark = pytest.mark.integration


async def test_declaring_again_is_a_no_op_and_a_check_finds_every_queue(vhost_url: str) -> None:
    await declare_queues(vhost_url, queues())
    await declare_queues(vhost_url, queues())
    await declare_queues(vhost_url, queues(), passive=True)
    with pytest.raises(ChannelNotFoundEntity):
        await declare_queues(vhost_url, [Queue(f"missing-{uuid.uuid4().hex[:6]}")], passive=True)


async def test_other_arguments_for_an_existing_queue_are_refused(vhost_url: str) -> None:
    await declare_queues(vhost_url, queues())
    with pytest.raises(ChannelPreconditionFailed):
        await declare_queues(vhost_url, [Queue(DEAD_LETTER_QUEUE, {"x-queue-type": "classic"})])


async def test_a_rejected_message_is_dead_lettered(vhost_url: str) -> None:
    await declare_queues(vhost_url, queues())
    queue = WORK_QUEUES[Channel.SMS]
    message_id = f"reject-{uuid.uuid4().hex[:8]}"
    publisher = Publisher(vhost_url, app_id="tests")
    try:
        await publisher.publish_one(Outgoing(queue, b"{}", message_id))
    finally:
        await publisher.close()
    with pika.BlockingConnection(pika.URLParameters(vhost_url)) as connection:
        channel = connection.channel()
        dead: list[str] = []
        for _ in range(200):
            method, properties, _body = channel.basic_get(queue)
            if method is not None:
                assert properties is not None
                assert properties.message_id == message_id, "the module's own queue"
                assert method.delivery_tag is not None
                channel.basic_reject(method.delivery_tag, requeue=False)
            method, properties, _body = channel.basic_get(DEAD_LETTER_QUEUE, auto_ack=True)
            if method is not None and properties is not None:
                dead.append(properties.message_id or "")
            if message_id in dead:
                break
            connection.sleep(0.05)
    assert message_id in dead
