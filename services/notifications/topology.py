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

The work and retry queues dead-letter **at least once** (`x-dead-letter-strategy`, RabbitMQ
3.10+, which needs `x-overflow: reject-publish`): a message leaves a retry queue only once the
work queue has confirmed it, so no broker failure between the two loses it.

The retry delays (and so the retry queues' names) and the attempt limit are settings
(RETRY_DELAYS_SECONDS, MAX_ATTEMPTS) that the service, the workers and the NotificationQueue
resources must agree on; the defaults are the chart's.

These are exactly the queues the operator's NotificationQueue resources declare with the
chart's defaults (`notificationQueues` in values.yaml; a unit test compares the two), so
whichever declares first, the other finds them as it would have made them. In a cluster the
operator owns them: the chart sets DECLARE_QUEUES=false and the service only checks that they
exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def _dead_lettering(target: str) -> dict[str, Any]:
    return {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": target,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def retry_delay(attempt: int, delays: Sequence[int] = RETRY_DELAYS_SECONDS) -> int:
    """The delay before attempt `attempt + 1`, after `attempt` failed (the last delay repeats)."""
    return delays[min(attempt, len(delays)) - 1]


def queues(
    retry_delays: Sequence[int] = RETRY_DELAYS_SECONDS, max_attempts: int = MAX_ATTEMPTS
) -> list[Queue]:
    """Every queue, the dead-letter queue first (the work queues dead-letter into it)."""
    declared = [_queue(DEAD_LETTER_QUEUE)]
    for channel, work in WORK_QUEUES.items():
        declared.append(
            _queue(work, **_dead_lettering(DEAD_LETTER_QUEUE), **{"x-delivery-limit": max_attempts})
        )
        declared += [
            _queue(
                retry_queue(channel, delay),
                **_dead_lettering(work),
                **{"x-message-ttl": delay * 1000},
            )
            for delay in retry_delays
        ]
    return declared
