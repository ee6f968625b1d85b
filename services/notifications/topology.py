"""The RabbitMQ queues of notifications, in one place: the service publishes to them, the
workers consume them.

Every queue is durable, of type quorum, and bound to the default exchange by its name, so a
message is published to exchange "" with the queue's name as routing key. Per channel:

- the work queue `<channel>.notifications` (the seed's names), which dead-letters a rejected
  message, or one delivered `MAX_ATTEMPTS` times, to `notifications.dlq`;
- one retry queue per delay, `<channel>.notifications.retry.<n>s`, whose messages expire after
  n seconds back into the work queue (a worker parks a failed message there instead of
  sleeping);

and `notifications.dlq`, the dead-letter queue shared by the channels.

These are exactly the queues the operator's NotificationQueue resources declare with the
chart's defaults (`notificationQueues` in values.yaml; a unit test compares the two), so
whichever declares first, the other finds them as it would have made them. In a cluster the
operator owns them: the chart sets DECLARE_QUEUES=false and the service only checks that they
exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.kit.rabbit import Queue
from services.notifications.domain import Channel

DEAD_LETTER_QUEUE = "notifications.dlq"
MAX_ATTEMPTS = 5
RETRY_DELAYS_SECONDS = (5, 30, 300)
QUEUE_TYPE = "quorum"

WORK_QUEUES: Mapping[Channel, str] = {channel: f"{channel}.notifications" for channel in Channel}


def retry_queue(channel: Channel, delay_seconds: int) -> str:
    return f"{WORK_QUEUES[channel]}.retry.{delay_seconds}s"


def _queue(name: str, **arguments: Any) -> Queue:
    return Queue(name, {"x-queue-type": QUEUE_TYPE, **arguments})


def queues() -> list[Queue]:
    """Every queue, the dead-letter queue first (the work queues dead-letter into it)."""
    declared = [_queue(DEAD_LETTER_QUEUE)]
    for channel, work in WORK_QUEUES.items():
        declared.append(
            _queue(
                work,
                **{
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": DEAD_LETTER_QUEUE,
                    "x-delivery-limit": MAX_ATTEMPTS,
                },
            )
        )
        declared += [
            _queue(
                retry_queue(channel, delay),
                **{
                    "x-message-ttl": delay * 1000,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": work,
                },
            )
            for delay in RETRY_DELAYS_SECONDS
        ]
    return declared
