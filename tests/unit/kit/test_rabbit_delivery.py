"""A delivery read from aiormq's consumer callback (services/kit/rabbit_consumer.py): its fields,
and one ack or nack, never two, a batch's in one write."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiormq.abc import ChannelFrame, DeliveredMessage
from aiormq.exceptions import ChannelInvalidStateError
from pamqp import commands
from pamqp.frame import unmarshal
from pamqp.header import ContentHeader

from services.kit.rabbit_consumer import Delivery, settle


class WritingChannel:
    """What `settle` writes on: the connection's write queue, drained by `drain()`."""

    number = 3

    def __init__(self, *, closed: bool = False) -> None:
        self.is_closed = closed
        self.write_queue: asyncio.Queue[ChannelFrame] = asyncio.Queue()

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    async def drain(self) -> list[list[tuple[str, int, bool]]]:
        """Each write's frames as (method, tag, requeue), once `settle` waits for them."""
        writes = []
        await asyncio.sleep(0)
        while not self.write_queue.empty():
            written = self.write_queue.get_nowait()
            frames, payload = [], written.payload
            while payload:
                size, channel, frame = unmarshal(payload)
                assert channel == self.number
                assert isinstance(frame, commands.Basic.Ack | commands.Basic.Nack)
                frames.append((frame.name, frame.delivery_tag, getattr(frame, "requeue", False)))
                payload = payload[size:]
            writes.append(frames)
            assert written.drain_future is not None
            written.drain_future.set_result(None)
        return writes


def _delivered(channel: WritingChannel, **properties: Any) -> DeliveredMessage:
    return DeliveredMessage(
        delivery=commands.Basic.Deliver(consumer_tag="c", delivery_tag=42, routing_key="q"),
        header=ContentHeader(properties=commands.Basic.Properties(**properties), body_size=2),
        body=b"{}",
        channel=channel,  # type: ignore[arg-type]
    )


def test_a_delivery_carries_the_messages_body_properties_and_tag() -> None:
    delivery = Delivery.of(
        _delivered(
            WritingChannel(),
            headers={"attempt": 2},
            message_id="m-1",
            content_type="application/json",
        )
    )

    assert (delivery.body, delivery.delivery_tag) == (b"{}", 42)
    assert (delivery.message_id, delivery.content_type) == ("m-1", "application/json")
    assert delivery.headers == {"attempt": 2}


def test_a_message_without_headers_has_none() -> None:
    assert Delivery.of(_delivered(WritingChannel())).headers == {}


async def test_a_delivery_is_acked_or_nacked_once() -> None:
    channel = WritingChannel()
    acked, nacked = Delivery.of(_delivered(channel)), Delivery.of(_delivered(channel))

    settling = asyncio.create_task(settle([acked]))
    assert await channel.drain() == [[("Basic.Ack", 42, False)]]
    await settling
    settling = asyncio.create_task(settle([], [nacked]))
    assert await channel.drain() == [[("Basic.Nack", 42, True)]]
    await settling
    with pytest.raises(RuntimeError, match="already"):
        await settle([], [acked])
    with pytest.raises(RuntimeError, match="already"):
        await settle([nacked])


async def test_a_batch_with_a_delivery_settled_before_writes_nothing() -> None:
    channel = WritingChannel()
    fresh, settled_before = _tagged(channel, 1), _tagged(channel, 2)
    settled_before.settled = True

    with pytest.raises(RuntimeError, match="already"):
        await settle([fresh, settled_before])

    assert not fresh.settled
    assert await channel.drain() == []


def _tagged(channel: WritingChannel, tag: int) -> Delivery:
    return Delivery(b"{}", {}, None, None, tag, channel)  # type: ignore[arg-type]


async def test_a_batch_is_acked_and_nacked_in_one_write_each_tag_alone() -> None:
    channel = WritingChannel()
    acked = [_tagged(channel, tag) for tag in (5, 7)]
    requeued = [_tagged(channel, 6)]

    settling = asyncio.create_task(settle(acked, requeued))
    writes = await channel.drain()
    await settling

    assert writes == [[("Basic.Ack", 5, False), ("Basic.Ack", 7, False), ("Basic.Nack", 6, True)]]
    assert all(delivery.settled for delivery in (*acked, *requeued))
    with pytest.raises(RuntimeError, match="already"):
        await settle([acked[0]])


async def test_a_batch_on_a_closed_channel_raises_and_stays_unsettled() -> None:
    deliveries = [_tagged(WritingChannel(closed=True), tag) for tag in (1, 2)]

    with pytest.raises(ChannelInvalidStateError):
        await settle(deliveries)

    assert not any(delivery.settled for delivery in deliveries)


async def test_each_channel_of_a_batch_gets_its_own_write() -> None:
    first, second = WritingChannel(), WritingChannel()
    settling = asyncio.create_task(settle([_tagged(first, 1), _tagged(second, 1)]))
    first_writes, second_writes = await first.drain(), await second.drain()
    await settling
    assert first_writes == second_writes == [[("Basic.Ack", 1, False)]]
