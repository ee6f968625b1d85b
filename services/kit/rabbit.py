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
    `CONFIRM_TIMEOUT_SECONDS`, else why not.

    The batch goes to the broker as one write of frames built in one pass (kit/amqp_frames.py),
    under the channel's lock, with the delivery tags and confirmations aiormq keeps for its own
    `basic_publish`, so its reader settles them as it settles its own: an ack confirms, a nack
    or a return (`mandatory`) refuses, a closed channel fails them all."""
    if not messages:
        return []
    amqp = await channel.get_underlay_channel()
    if not isinstance(amqp, aiormq.Channel) or not amqp.publisher_confirms:
        raise TypeError("publishing needs an aiormq channel in confirm mode")
    confirmations = await _send(amqp, messages, app_id)
    _, pending = await asyncio.wait(confirmations, timeout=CONFIRM_TIMEOUT_SECONDS)
    for late in pending:
        late.cancel()  # a confirm that comes later is ignored
    results: list[BaseException | None] = []
    for message, confirmation in zip(messages, confirmations, strict=True):
        if confirmation in pending:
            results.append(Unconfirmed(f"{message.routing_key}: no confirm in time"))
        elif confirmation.cancelled():
            results.append(Unconfirmed(f"{message.routing_key}: the channel closed"))
        elif (error := confirmation.exception()) is not None:
            unconfirmed = Unconfirmed(f"{message.routing_key}: {error!r}")
            unconfirmed.__cause__ = error
            results.append(unconfirmed)
        else:
            results.append(None)
    return results


async def _send(
    amqp: aiormq.Channel, messages: Sequence[Outgoing], app_id: str
) -> list[asyncio.Future[Any]]:
    """Write the batch's frames in one piece and return each message's confirmation."""
    confirmations: list[asyncio.Future[Any]] = []
    async with amqp.lock:
        if amqp.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError("the channel is closed")
        first = amqp.delivery_tag + 1
        frames = []
        for tag, message in enumerate(messages, start=first):
            frames.append(
                publish_frames(
                    channel=amqp.number,
                    routing_key=message.routing_key,
                    body=message.body,
                    content_type=message.content_type,
                    headers=message.headers,
                    message_id=message.message_id,
                    app_id=app_id,
                    max_body=amqp.max_content_size,
                )
            )
            confirmation = amqp.create_future()
            amqp.confirmations[tag] = confirmation
            amqp.message_id_delivery_tag[message.message_id] = tag
            confirmation.add_done_callback(
                functools.partial(_forget, amqp, message.message_id, tag)
            )
            confirmations.append(confirmation)
        amqp.delivery_tag = first + len(messages) - 1
        written = amqp.create_future()
        await amqp.write_queue.put(
            ChannelFrame(payload=b"".join(frames), should_close=False, drain_future=written)
        )
        await written
    return confirmations


def _forget(amqp: aiormq.Channel, message_id: str, tag: int, _: asyncio.Future[Any]) -> None:
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
