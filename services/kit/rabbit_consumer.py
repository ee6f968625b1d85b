"""Consuming a RabbitMQ queue in batches, as a job of the kit runtime.

`QueueConsumer` opens its own connection and a confirming channel (`on_return_raises`, so a
handler can publish with confirms on it), sets the prefetch, checks the queue exists (it
declares nothing: the queue's owner does) and hands the delivered messages, in batches of what
has arrived, to `handle` in `processors` concurrent loops. `handle` acks or nacks every message
of its batch. A batch waits up to `linger` seconds after its first message for more to arrive
(until `batch_size`): while messages trickle in, a few milliseconds buy batches of tens instead
of ones, and so one database round trip per batch instead of one per message.

- `stop()`: consumption is cancelled, each loop finishes the batch in hand, and the messages
  still waiting (prefetched, never handled) go back to the queue when the connection closes;
- connection loss ends `run` with an error, so the runtime restarts the job with its backoff;
  the broker redelivers whatever was not acked;
- a handler that raises ends the job the same way.

The messages are `Delivery`s, read from aiormq's consumer callback: its body, headers, message
id and content type, acked or nacked once, a batch's together in one write (`settle`).
aio-pika's own consumer wrapped each message in its `IncomingMessage` (about twenty properties
set one by one through a locked `__setattr__`) and a second task, a fifth of the push worker's
CPU in the RabbitMQ client.

Tracing: `message_span` starts a message's CONSUMER span, a child of the trace context in its
headers (the publishing relay's span: kit/rabbit_outbox.py), for the subclass to make active
while it works on that message (`tracing.use`) and to end (`tracing.end_span`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import aiormq
from aio_pika.abc import AbstractChannel
from aiormq.abc import DeliveredMessage
from opentelemetry.trace import Span, SpanKind
from pamqp.commands import Basic
from pamqp.frame import marshal

from services.kit import tracing
from services.kit.rabbit import connect, hand_over

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(slots=True, eq=False)
class Delivery:
    """One message the broker delivered, to be acked or nacked once (`settle`)."""

    body: bytes
    headers: Mapping[str, Any]
    message_id: str | None
    content_type: str | None
    delivery_tag: int
    channel: aiormq.abc.AbstractChannel = field(repr=False)
    settled: bool = False

    @classmethod
    def of(cls, message: DeliveredMessage) -> Delivery:
        properties = message.header.properties
        tag = getattr(message.delivery, "delivery_tag", None)
        if tag is None:
            raise ValueError(f"not a delivery: {message.delivery!r}")
        return cls(
            body=message.body,
            headers=properties.headers or {},
            message_id=properties.message_id,
            content_type=properties.content_type,
            delivery_tag=tag,
            channel=message.channel,
        )

    def _check_unsettled(self) -> None:
        if self.settled:
            raise RuntimeError(f"delivery {self.delivery_tag} was acked or nacked already")


async def settle(acked: Sequence[Delivery], requeued: Sequence[Delivery] = ()) -> None:
    """Ack `acked` and nack `requeued` back to their queue, each channel's in one write: a
    Basic.Ack (or Basic.Nack) frame per delivery, joined. Not `multiple`, which would also
    settle the channel's earlier deliveries still in another batch's hands. A delivery acked
    or nacked before raises, with nothing written; a channel whose write failed raises, and
    its deliveries and those of the channels after it stay unsettled (they may still be
    nacked)."""
    chosen = [(delivery, True) for delivery in acked] + [(d, False) for d in requeued]
    for delivery, _ in chosen:
        delivery._check_unsettled()
    by_channel: dict[int, list[tuple[Delivery, bool]]] = {}
    for delivery, ack in chosen:
        delivery.settled = True
        by_channel.setdefault(id(delivery.channel), []).append((delivery, ack))
    groups = list(by_channel.values())
    for written, group in enumerate(groups):
        try:
            await _write_settlements(group)
        except BaseException:
            for delivery, _ in (pair for later in groups[written:] for pair in later):
                delivery.settled = False
            raise


async def _write_settlements(group: list[tuple[Delivery, bool]]) -> None:
    channel = cast(aiormq.Channel, group[0][0].channel)
    if channel.is_closed:
        raise aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} closed")
    payload = b"".join(
        marshal(
            Basic.Ack(delivery_tag=delivery.delivery_tag)
            if ack
            else Basic.Nack(delivery_tag=delivery.delivery_tag, requeue=True),
            channel.number,
        )
        for delivery, ack in group
    )
    await (await hand_over(channel, payload))


class Inbox(Generic[T]):
    """The messages delivered and not yet taken, in order, and the takers waiting for one: a
    message wakes the longest waiting. Where an `asyncio.Queue` is awaited beside a stop event,
    each wait took two tasks and an `asyncio.wait`, a few per batch."""

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def get_nowait(self) -> T:
        return self._items.popleft()

    async def wait(self, waiter: asyncio.Future[None]) -> None:
        """Wait on `waiter` until a message arrives (or whoever else holds it resolves it)."""
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)  # a wait that timed out or was stopped


class QueueConsumer(ABC):
    def __init__(
        self,
        url: str,
        queue: str,
        *,
        name: str,
        prefetch: int,
        batch_size: int,
        processors: int = 1,
        linger: float = 0.0,
    ) -> None:
        self.url = url
        self.queue = queue
        self.name = name
        self.prefetch = prefetch
        self.batch_size = batch_size
        self.processors = processors
        self.linger = linger
        self._stop = asyncio.Event()
        self._waiting: set[asyncio.Future[None]] = set()

    @abstractmethod
    async def handle(self, batch: list[Delivery], channel: AbstractChannel) -> None:
        """Work on a batch and settle each of its messages (`settle`)."""

    def stop(self) -> None:
        self._stop.set()
        for waiter in self._waiting:
            if not waiter.done():
                waiter.set_result(None)

    def message_span(self, message: Delivery) -> Span | None:
        """A CONSUMER span for `message`, child of the context in its headers (a trace of its
        own when they carry none); None while tracing is off. The caller ends it."""
        return tracing.start_span(
            self.name,
            f"{self.queue} process",
            kind=SpanKind.CONSUMER,
            parent=message.headers,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "process",
                "messaging.destination.name": self.queue,
                "messaging.message.id": message.message_id or "",
            },
            root=True,
        )

    async def run(self) -> None:
        connection = await connect(self.url, name=self.name)
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            await channel.set_qos(prefetch_count=self.prefetch)
            await channel.get_queue(self.queue, ensure=True)  # it exists: raises if not
            amqp = await channel.get_underlay_channel()
            inbox: Inbox[Delivery] = Inbox()

            async def arrived(message: DeliveredMessage) -> None:
                inbox.put_nowait(Delivery.of(message))

            consumer_tag = (await amqp.basic_consume(self.queue, arrived)).consumer_tag
            if consumer_tag is None:
                raise RuntimeError(f"{self.name}: the broker gave no consumer tag")
            log.info("consuming", extra={"queue": self.queue})
            loops = [
                asyncio.create_task(self._loop(inbox, channel), name=f"{self.name}-{n}")
                for n in range(self.processors)
            ]
            closed = asyncio.ensure_future(connection.closed())
            stopping = asyncio.ensure_future(self._stop.wait())
            # The broker may end the consumer (its queue deleted) or the channel alone (a
            # protocol error) and leave the connection up: either ends the job too.
            cut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            amqp.on_consumer_cancel_callbacks.add(
                lambda _frame: None if cut.done() else cut.set_result(None)
            )
            channel_closed = amqp.closing
            watched: set[asyncio.Future[Any]] = {closed, stopping, cut, channel_closed, *loops}
            try:
                done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                if stopping in done:
                    await amqp.basic_cancel(consumer_tag)
                    await asyncio.wait(loops)  # each finishes its batch and ends
                for loop in loops:
                    error = loop.exception() if loop.done() and not loop.cancelled() else None
                    if error is not None:
                        raise error
                if closed in done:
                    raise ConnectionError(f"{self.name}: RabbitMQ connection lost")
                if cut in done:
                    raise ConnectionError(f"{self.name}: the broker cancelled the consumer")
                if channel_closed in done:
                    raise ConnectionError(f"{self.name}: the broker closed the channel")
            finally:
                for future in watched:
                    future.cancel()
                await asyncio.gather(*watched, return_exceptions=True)
        finally:
            if not connection.is_closed:
                await connection.close()

    async def _loop(self, inbox: Inbox[Delivery], channel: AbstractChannel) -> None:
        while not self._stop.is_set():
            batch = await self._next_batch(inbox)
            if batch:
                await self.handle(batch, channel)

    async def _next_batch(self, inbox: Inbox[Delivery]) -> list[Delivery]:
        """What has arrived, up to `batch_size`; waits for one message, or returns [] on stop.

        After the first message, waits up to `linger` (and not past a stop) for the batch to
        fill."""
        first = await self._take(inbox, None)
        if first is None:
            return []
        batch = [first]
        deadline = asyncio.get_running_loop().time() + self.linger
        while len(batch) < self.batch_size:
            if inbox:
                batch.append(inbox.get_nowait())
                continue
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            message = await self._take(inbox, left)
            if message is None:
                break
            batch.append(message)
        return batch

    async def _take(self, inbox: Inbox[Delivery], within: float | None) -> Delivery | None:
        """The next message, or None on stop or when none came `within` seconds."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while True:
            if inbox:
                return inbox.get_nowait()
            if self._stop.is_set():
                return None
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return None
            # One future, woken by a message or by `stop()`: no task per wait.
            waiter = loop.create_future()
            self._waiting.add(waiter)
            try:
                async with asyncio.timeout(left):
                    await inbox.wait(waiter)
            except TimeoutError:
                pass
            finally:
                self._waiting.discard(waiter)
