"""RabbitMQ publishing with publisher confirms, on pika.

`ConfirmingPublisher.publish` returns only once the broker has confirmed the message (and it
was routable: `mandatory`), so a notification handed to it is not lost. pika connections are
not thread-safe: one lock serialises use, and async code calls it through `asyncio.to_thread`.
`declare_queues` declares (or checks) a service's durable queues.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import AMQPConnectionError, ChannelClosed, ConnectionClosed

log = logging.getLogger(__name__)


class ConfirmingPublisher:
    """Publishes persistent messages and waits for the broker's confirm."""

    def __init__(self, url: str, *, app_id: str) -> None:
        self.url = url
        self.app_id = app_id
        self._lock = threading.Lock()
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    def _ensure_channel(self) -> BlockingChannel:
        if self._channel is None or self._channel.is_closed:
            if self._connection is None or self._connection.is_closed:
                params = pika.URLParameters(self.url)
                params.heartbeat = 30
                params.blocked_connection_timeout = 30
                self._connection = pika.BlockingConnection(params)
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
        return self._channel

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        """Publish and wait for the confirm; raises if the broker refuses or cannot route it."""
        properties = pika.BasicProperties(
            content_type=content_type,
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=message_id,
            app_id=self.app_id,
            headers=dict(headers or {}),
        )
        with self._lock:
            for attempt in (1, 2):
                try:
                    channel = self._ensure_channel()
                    channel.basic_publish(
                        exchange, routing_key, body, properties=properties, mandatory=True
                    )
                    return
                except (AMQPConnectionError, ConnectionClosed, ChannelClosed):
                    self._channel = None
                    if attempt == 2:
                        raise
                    log.warning("rabbitmq connection lost; reconnecting")

    def ping(self) -> None:
        with self._lock:
            self._ensure_channel()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and self._connection.is_open:
                self._connection.close()
            self._connection = None
            self._channel = None


@dataclass(frozen=True, slots=True)
class Queue:
    """A durable queue and its arguments (`x-queue-type` included), bound to the default
    exchange by its name."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


def declare_queues(url: str, queues: Iterable[Queue], *, passive: bool = False) -> None:
    """Declare `queues` (a no-op for a queue that exists with the same arguments), or with
    `passive` only check that they exist; raises `ChannelClosedByBroker` for a missing queue
    (passive) or one that exists with other arguments.

    Short socket timeouts: this also serves readiness probes, which must not hold a thread of
    the default executor for long while the broker hangs.
    """
    params = pika.URLParameters(url)
    params.socket_timeout = 2
    params.stack_timeout = 3
    params.connection_attempts = 1
    with pika.BlockingConnection(params) as connection:
        channel = connection.channel()
        for queue in queues:
            channel.queue_declare(
                queue.name, durable=True, passive=passive, arguments=queue.arguments or None
            )
