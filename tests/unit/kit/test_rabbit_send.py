"""A batch handed to the connection keeps aiormq's tables in step with the broker's count
(services/kit/rabbit.py `_send`); one that was not handed over leaves them as they were."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiormq.abc import ChannelFrame

from services.kit.rabbit import Outgoing, _send


class Channel:
    """The part of an aiormq channel `_send` uses, with a connection queue of one place."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.is_closed = False
        self.delivery_tag = 7
        self.number = 1
        self.max_content_size = 4088
        self.confirmations: dict[int, Any] = {}
        self.message_id_delivery_tag: dict[str, int] = {}
        self.write_queue: asyncio.Queue[ChannelFrame] = asyncio.Queue(maxsize=1)

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()


def _batch(*ids: str) -> list[tuple[int, Outgoing, bytes]]:
    return [
        (n, Outgoing("q", b"{}", mid), f"<frames of {mid}>".encode()) for n, mid in enumerate(ids)
    ]


async def test_a_batch_handed_over_takes_the_next_tags_in_one_write() -> None:
    channel = Channel()
    sending = asyncio.create_task(_send(channel, _batch("m-1", "m-2")))  # type: ignore[arg-type]
    frame = await channel.write_queue.get()
    assert frame.payload == b"<frames of m-1><frames of m-2>"
    assert frame.drain_future is not None
    frame.drain_future.set_result(None)
    confirmations = await sending

    assert channel.delivery_tag == 9
    assert channel.confirmations == {8: confirmations[0], 9: confirmations[1]}
    assert channel.message_id_delivery_tag == {"m-1": 8, "m-2": 9}
    confirmations[0].set_result(None)
    await asyncio.sleep(0)
    assert channel.message_id_delivery_tag == {"m-2": 9}, "a settled message's id is dropped"


async def test_a_batch_cancelled_before_it_was_handed_over_gives_its_tags_back() -> None:
    channel = Channel()
    channel.write_queue.put_nowait(ChannelFrame(payload=b"another's", should_close=False))
    sending = asyncio.create_task(_send(channel, _batch("m-1", "m-2")))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)  # waiting for room in the connection's queue
    assert channel.delivery_tag == 9

    sending.cancel()
    await asyncio.gather(sending, return_exceptions=True)
    await asyncio.sleep(0)

    assert channel.delivery_tag == 7
    assert channel.confirmations == {}
    assert channel.message_id_delivery_tag == {}
    assert channel.write_queue.qsize() == 1
    assert not channel.lock.locked()


async def test_a_closed_channel_takes_nothing() -> None:
    channel = Channel()
    channel.is_closed = True
    with pytest.raises(RuntimeError, match="closed"):
        await _send(channel, _batch("m-1"))  # type: ignore[arg-type]
    assert (channel.delivery_tag, channel.confirmations) == (7, {})


async def test_a_batch_cancelled_after_it_was_handed_over_keeps_its_tags() -> None:
    """Its frames go out whatever happens to the caller: the broker will count them."""
    channel = Channel()
    sending = asyncio.create_task(_send(channel, _batch("m-1", "m-2")))  # type: ignore[arg-type]
    await channel.write_queue.get()  # handed over; its write not yet drained
    sending.cancel()
    await asyncio.gather(sending, return_exceptions=True)

    assert channel.delivery_tag == 9
    assert sorted(channel.confirmations) == [8, 9]
    assert channel.message_id_delivery_tag == {"m-1": 8, "m-2": 9}
