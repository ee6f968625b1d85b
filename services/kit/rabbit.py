"""RabbitMQ on aio-pika: publishing with confirms, and the queues a service declares.

`Publisher` keeps one connection and one channel in confirm mode, opened on first use and again
after the broker went away. `publish` hands a whole batch to the broker before awaiting any
confirm (pipelined: one round trip for the batch, not one per message) and reports, per
message, whether the broker confirmed it: a message is confirmed only when it was routable
(`mandatory`, so an unroutable message is an error, not a loss) and written to the queue. A
batch is written as one piece, its frames built in one pass (`publish_confirmed`): through
aio-pika's `Exchange.publish`, a task, a lock, the message objects and pamqp's marshalling per
message were 16% of the notifications service's CPU.

`declare_queues` declares (or only checks) a service's durable queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq.abc import ChannelFrame

from services.kit.amqp_frames import publish_frames

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0
CONFIRM_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class Queue:
    """A durable queue and its arguments (`x-queue-type` included), bound to the default
    exchange by its name."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message for the default exchange (`routing_key` = the queue's name)."""

    routing_key: str
    body: bytes
    message_id: str
    headers: Mapping[str, str | int] = field(default_factory=dict)
    content_type: str = "application/json"


class Unconfirmed(Exception):
    """The broker did not confirm a message: it refused it (nack), could not route it
    (returned), or the connection ended before the confirm."""


_closing: set[asyncio.Task[None]] = set()


async def connect(url: str, *, name: str) -> AbstractConnection:
    """A connection that knows when the broker dropped it.

    aio-pika marks a connection closed (`is_closed`, `closed()`) only when it is closed
    explicitly; a broker that dies or restarts leaves it looking open forever. Here a lost
    connection closes itself, so every user of `is_closed` and `closed()` sees the loss."""
    connection = await aio_pika.connect(
        url, timeout=CONNECT_TIMEOUT_SECONDS, client_properties={"connection_name": name}
    )

    def lost(_sender: object, _error: object = None) -> None:
        if not connection.is_closed:
            task = asyncio.ensure_future(connection.close())
            _closing.add(task)
            task.add_done_callback(_closing.discard)

    connection.close_callbacks.add(lost)
    return connection


async def publish_confirmed(
    channel: AbstractChannel, messages: Sequence[Outgoing], *, app_id: str
) -> list[BaseException | None]:
    """Publish every message on `channel` (in confirm mode, `on_return_raises`) before awaiting
    the confirms; per message, None when the broker confirmed it within
    `CONFIRM_TIMEOUT_SECONDS` (the write included), else why not.

    The batch goes to the broker as one write of frames built in one pass (kit/amqp_frames.py),
    under the channel's lock, with the delivery tags and confirmations aiormq keeps for its own
    `basic_publish`, so its reader settles them as it settles its own: an ack confirms, a nack
    or a return (`mandatory`) refuses, a closed channel fails them all. A batch that was not
    handed to the connection (a cancellation or the time limit while it waited for the lock or
    for room in the connection's queue) gives its delivery tags back, as `basic_publish` does,
    so the broker's count and the channel's stay in step."""
    if not messages:
        return []
    amqp = await channel.get_underlay_channel()
    if not isinstance(amqp, aiormq.Channel) or not amqp.publisher_confirms:
        raise TypeError("publishing needs an aiormq channel in confirm mode")
    results: list[BaseException | None] = [None] * len(messages)
    batch: list[tuple[int, Outgoing, bytes]] = []
    for index, message in enumerate(messages):
        try:
            batch.append((index, message, _frames(message, app_id, amqp)))
        except (TypeError, ValueError) as exc:  # this message cannot be published at all
            results[index] = _unconfirmed(message, repr(exc), exc)
    if not batch:
        return results
    deadline = asyncio.get_running_loop().time() + CONFIRM_TIMEOUT_SECONDS
    try:
        async with asyncio.timeout_at(deadline):
            confirmations = await _send(amqp, batch)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        # aiormq fails what waits on a channel it closes with a cancellation
        return _fail_all(results, batch, "the channel closed", None)
    except Exception as exc:  # the time limit, or the channel or connection failing
        return _fail_all(results, batch, repr(exc), exc)
    left = max(deadline - asyncio.get_running_loop().time(), 0.0)
    _, pending = await asyncio.wait(confirmations, timeout=left)
    for late in pending:
        late.cancel()  # a confirm that comes later is ignored
    for (index, message, _), confirmation in zip(batch, confirmations, strict=True):
        if confirmation in pending:
            results[index] = _unconfirmed(message, "no confirm in time", None)
        elif confirmation.cancelled():
            results[index] = _unconfirmed(message, "the channel closed", None)
        elif (error := confirmation.exception()) is not None:
            results[index] = _unconfirmed(message, repr(error), error)
    return results


def _frames(message: Outgoing, app_id: str, amqp: aiormq.Channel) -> bytes:
    return publish_frames(
        channel=amqp.number,
        routing_key=message.routing_key,
        body=message.body,
        content_type=message.content_type,
        headers=message.headers,
        message_id=message.message_id,
        app_id=app_id,
        max_body=amqp.max_content_size,
    )


def _unconfirmed(message: Outgoing, why: str, cause: BaseException | None) -> Unconfirmed:
    unconfirmed = Unconfirmed(f"{message.routing_key}: {why}")
    unconfirmed.__cause__ = cause
    return unconfirmed


def _fail_all(
    results: list[BaseException | None],
    batch: list[tuple[int, Outgoing, bytes]],
    why: str,
    cause: BaseException | None,
) -> list[BaseException | None]:
    for index, message, _ in batch:
        results[index] = _unconfirmed(message, why, cause)
    return results


async def _send(
    amqp: aiormq.Channel, batch: list[tuple[int, Outgoing, bytes]]
) -> list[asyncio.Future[Any]]:
    """Hand the batch's frames to the connection in one piece and return each message's
    confirmation; if they were not handed over, the channel's tables are as they were."""
    async with amqp.lock:
        if amqp.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError("the channel is closed")
        first = amqp.delivery_tag + 1
        registered = [
            (tag, message.message_id, amqp.create_future())
            for tag, (_, message, _) in enumerate(batch, start=first)
        ]
        for tag, message_id, confirmation in registered:
            amqp.confirmations[tag] = confirmation
            amqp.message_id_delivery_tag[message_id] = tag
        amqp.delivery_tag = first + len(batch) - 1
        try:
            written = await hand_over(amqp, b"".join(frames for _, _, frames in batch))
        except BaseException:
            # Not queued, so never sent: the broker will not count these.
            amqp.delivery_tag = first - 1
            for tag, message_id, confirmation in registered:
                amqp.confirmations.pop(tag, None)
                _forget(amqp, message_id, tag)
                confirmation.cancel()
            raise
        for tag, message_id, confirmation in registered:
            confirmation.add_done_callback(functools.partial(_forget, amqp, message_id, tag))
        await written
    return [confirmation for _, _, confirmation in registered]


async def hand_over(amqp: aiormq.Channel, payload: bytes) -> asyncio.Future[Any]:
    """Queue `payload` (whole frames of the channel) for its connection to write in one piece;
    the future it returns is done once written. Raises, having queued nothing, if the payload
    could not be queued (the connection's queue is bounded: this may wait for room)."""
    written = amqp.create_future()
    try:
        await amqp.write_queue.put(
            ChannelFrame(payload=payload, should_close=False, drain_future=written)
        )
    except BaseException:
        written.cancel()
        raise
    return written


def _forget(amqp: aiormq.Channel, message_id: str, tag: int, _settled: object = None) -> None:
    """Drop a settled message's id from the channel's table of returns."""
    if amqp.message_id_delivery_tag.get(message_id) == tag:
        del amqp.message_id_delivery_tag[message_id]


class Publisher:
    """Publishes persistent messages with confirms over one lazily (re)opened connection."""

    def __init__(self, url: str, *, app_id: str) -> None:
        self.url = url
        self.app_id = app_id
        self._lock = asyncio.Lock()
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None

    async def _ensure_channel(self) -> AbstractChannel:
        async with self._lock:
            if self._channel is None or self._channel.is_closed:
                if self._connection is None or self._connection.is_closed:
                    self._connection = await connect(self.url, name=f"{self.app_id}-publisher")
                self._channel = await self._connection.channel(
                    publisher_confirms=True, on_return_raises=True
                )
            return self._channel

    async def _drop(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    async def publish(self, messages: Sequence[Outgoing]) -> list[BaseException | None]:
        """Publish a batch; per message, None when confirmed, else the reason it was not.

        Raises only when no channel can be opened (the broker is unreachable)."""
        if not messages:
            return []
        channel = await self._ensure_channel()
        results = await publish_confirmed(channel, messages, app_id=self.app_id)
        if any(results) and channel.is_closed:
            async with self._lock:
                if channel is self._channel:  # not dropped already by a concurrent publish
                    log.warning("rabbitmq channel lost while publishing; reconnecting next time")
                    await self._drop()
        return results

    async def publish_one(self, message: Outgoing) -> None:
        """Publish one message and wait for its confirm; raises `Unconfirmed` if refused."""
        (error,) = await self.publish([message])
        if error is not None:
            raise error

    async def close(self) -> None:
        async with self._lock:
            await self._drop()


async def declare_queues(url: str, queues: Iterable[Queue], *, passive: bool = False) -> None:
    """Declare `queues` (a no-op for a queue that exists with the same arguments), or with
    `passive` only check that they exist; raises `aiormq.ChannelNotFoundEntity` for a missing
    queue (passive) and `aiormq.ChannelPreconditionFailed` for one that exists with other
    arguments. Bounded in time: this also serves readiness probes."""
    async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS * 2):
        connection = await connect(url, name="declare-queues")
        async with connection:
            channel = await connection.channel(publisher_confirms=False)
            for queue in queues:
                await channel.declare_queue(
                    queue.name,
                    durable=True,
                    passive=passive,
                    arguments=queue.arguments or None,
                )
