"""Publishing with confirms on a real RabbitMQ: a confirmed batch is on the queue in order, an
unroutable message is reported instead of vanishing, a closed publisher reconnects, a body
larger than a frame arrives whole, and batches share a channel with aio-pika's own publishes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import aiormq
import pytest
from aio_pika.abc import AbstractIncomingMessage, DeliveryMode

from services.kit.rabbit import Outgoing, Publisher, Unconfirmed, publish_confirmed

pytestmark = pytest.mark.integration


@pytest.fixture
async def queue(rabbitmq_server: Any) -> AsyncIterator[str]:
    name = f"kit-test-{uuid.uuid4().hex[:8]}"
    async with await aio_pika.connect(rabbitmq_server.amqp_url) as connection:
        channel = await connection.channel()
        await channel.declare_queue(name, durable=True)
        yield name
        await channel.queue_delete(name)


async def _take(url: str, queue: str, count: int) -> list[AbstractIncomingMessage]:
    taken: list[AbstractIncomingMessage] = []
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        declared = await channel.get_queue(queue, ensure=False)
        for _ in range(count):
            message = await declared.get(no_ack=True, fail=False)
            if message is None:
                break
            taken.append(message)
    return taken


async def test_a_confirmed_batch_is_persistent_and_on_the_queue_in_order(
    rabbitmq_server: Any, queue: str
) -> None:
    publisher = Publisher(rabbitmq_server.amqp_url, app_id="kit-test")
    try:
        results = await publisher.publish(
            [
                Outgoing(queue, f'{{"n": {n}}}'.encode(), f"m-{n}", {"attempt": "1"})
                for n in range(50)
            ]
        )
    finally:
        await publisher.close()
    assert results == [None] * 50
    taken = await _take(rabbitmq_server.amqp_url, queue, 60)
    assert [m.message_id for m in taken] == [f"m-{n}" for n in range(50)]
    first = taken[0]
    assert first.body == b'{"n": 0}'
    assert first.delivery_mode == DeliveryMode.PERSISTENT
    assert first.headers == {"attempt": "1"}
    assert first.app_id == "kit-test"


async def test_an_unroutable_message_is_reported_and_the_others_confirmed(
    rabbitmq_server: Any, queue: str
) -> None:
    publisher = Publisher(rabbitmq_server.amqp_url, app_id="kit-test")
    try:
        results = await publisher.publish(
            [
                Outgoing(queue, b"a", "m-a"),
                Outgoing(f"no-such-queue-{uuid.uuid4().hex}", b"x", "m-x"),
                Outgoing(queue, b"b", "m-b"),
            ]
        )
        with pytest.raises(Unconfirmed):
            await publisher.publish_one(Outgoing(f"no-such-{uuid.uuid4().hex}", b"y", "m-y"))
    finally:
        await publisher.close()
    assert results[0] is None
    assert isinstance(results[1], Unconfirmed)
    assert results[2] is None
    assert [m.body for m in await _take(rabbitmq_server.amqp_url, queue, 5)] == [b"a", b"b"]


async def test_publishing_after_close_opens_a_new_connection(
    rabbitmq_server: Any, queue: str
) -> None:
    publisher = Publisher(rabbitmq_server.amqp_url, app_id="kit-test")
    try:
        await publisher.publish_one(Outgoing(queue, b"first", "m-3"))
        await publisher.close()
        await publisher.publish_one(Outgoing(queue, b"second", "m-4"))
    finally:
        await publisher.close()
    taken = await _take(rabbitmq_server.amqp_url, queue, 5)
    assert [m.body for m in taken] == [b"first", b"second"]


async def test_a_body_over_one_frame_arrives_whole_with_its_properties(
    rabbitmq_server: Any, queue: str
) -> None:
    body = bytes(range(256)) * 2_000  # 512,000 bytes: the broker's frames are 128 KiB
    publisher = Publisher(rabbitmq_server.amqp_url, app_id="kit-test")
    try:
        await publisher.publish_one(
            Outgoing(queue, body, "m-big", {"attempt": 3, "été": "café"}, "application/x-test")
        )
    finally:
        await publisher.close()
    (taken,) = await _take(rabbitmq_server.amqp_url, queue, 2)
    assert taken.body == body
    assert (taken.message_id, taken.content_type) == ("m-big", "application/x-test")
    assert taken.headers == {"attempt": 3, "été": "café"}


async def test_batches_share_the_channel_with_its_own_publishes_and_leave_no_state(
    rabbitmq_server: Any, queue: str
) -> None:
    """The batch takes delivery tags from the channel's own count: a message published through
    aio-pika on the same channel between two batches is confirmed as its own, and every
    settled message leaves the channel's tables."""
    async with await aio_pika.connect(rabbitmq_server.amqp_url) as connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        first = await publish_confirmed(
            channel, [Outgoing(queue, b"1", "m-1"), Outgoing(queue, b"2", "m-2")], app_id="t"
        )
        await channel.default_exchange.publish(
            aio_pika.Message(b"own", message_id="m-own"), queue, mandatory=True
        )
        second = await publish_confirmed(
            channel,
            [Outgoing(queue, b"3", "m-3"), Outgoing(f"no-such-{uuid.uuid4().hex}", b"x", "m-x")],
            app_id="t",
        )
        amqp = await channel.get_underlay_channel()
        assert isinstance(amqp, aiormq.Channel)
        assert amqp.delivery_tag == 5
        assert amqp.message_id_delivery_tag == {}
    assert first == [None, None]
    assert second[0] is None
    assert isinstance(second[1], Unconfirmed)
    taken = await _take(rabbitmq_server.amqp_url, queue, 10)
    assert [m.body for m in taken] == [b"1", b"2", b"own", b"3"]
