"""The services' Socket.IO emitter on a real Redis: the emits waiting while a round trip is out
go in one pipeline, in order; a Redis that cannot be reached or a full queue loses pushes,
counted, and never fails the emit."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from devstack.ports import free_port
from devstack.testing import RedisServer
from services.kit.live import REDIS_CHANNEL, PipelinedEmitter, create_emitter
from services.kit.metrics import LIVE_PUSHES

pytestmark = pytest.mark.integration


def pushes(outcome: str) -> float:
    value: float = LIVE_PUSHES.labels(outcome)._value.get()
    return value


async def test_emits_waiting_together_are_one_round_trip_in_their_order(
    redis_server: RedisServer,
) -> None:
    emitter = create_emitter(redis_server.url)
    batches: list[int] = []
    publish_all = emitter._publish_all

    async def counted(batch: list[str]) -> None:
        batches.append(len(batch))
        await publish_all(batch)

    emitter._publish_all = counted  # type: ignore[method-assign]
    listener = Redis.from_url(redis_server.url)
    subscription = listener.pubsub(ignore_subscribe_messages=True)
    await subscription.subscribe(REDIS_CHANNEL)
    before = pushes("published")
    try:
        for n in range(5):  # an after-commit runner with five pushes waiting
            await emitter.emit("order.updated", {"n": n}, room="user:ada")
        await emitter.drained()
        await emitter.emit("order.updated", {"n": 5}, room="user:ada")
        await emitter.drained()

        received: list[Any] = []
        async with asyncio.timeout(5):
            while len(received) < 6:
                message = await subscription.get_message(timeout=1.0)
                if message is not None:
                    received.append(orjson.loads(message["data"]))
    finally:
        await subscription.aclose()  # type: ignore[no-untyped-call]
        await listener.aclose()
        await emitter.close()

    assert batches == [5, 1]
    assert [(m["event"], m["room"]) for m in received] == [("order.updated", "user:ada")] * 6
    assert [m["data"] for m in received] == [[{"n": n}] for n in range(6)]
    assert pushes("published") == before + 6


async def test_an_unreachable_redis_or_a_full_queue_loses_pushes_counted() -> None:
    nowhere = PipelinedEmitter(f"redis://127.0.0.1:{free_port()}/0", capacity=2, timeout=1.0)
    failed, dropped = pushes("failed"), pushes("dropped")

    for n in range(3):
        await nowhere.emit("order.updated", {"n": n}, room="user:ada")  # never raises
    await nowhere.close()

    assert pushes("dropped") == dropped + 1
    assert pushes("failed") == failed + 2
