"""NotificationQueue through the RabbitMQ management API: the real queues exist with their
arguments, the retry and dead-letter routing works with real messages, conflicts are reported,
and deletion follows the policy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.k8s.operator.support import RabbitAdmin, Resources, unique
from tests.support import wait_until

pytestmark = pytest.mark.k8s


def existing(rabbit: RabbitAdmin, name: str) -> dict[str, Any]:
    queue = rabbit.queue(name)
    assert queue is not None, f"queue {name} does not exist"
    return queue


PLURAL, KIND = "notificationqueues", "NotificationQueue"


def test_declares_work_retry_and_dead_letter_queues_that_route(
    direct: Resources, rabbit: RabbitAdmin
) -> None:
    name = unique("email")
    work, dead = f"test.{name}", f"test.{name}.dead"
    direct.create(
        PLURAL,
        name,
        {
            "queueName": work,
            "type": "classic",
            "maxAttempts": 3,
            "retryDelaysSeconds": [1, 30],
            "deadLetterQueue": dead,
            "messageTtlSeconds": 600,
            "deletionPolicy": "Delete",
        },
        KIND,
    )
    ready = direct.wait_ready(PLURAL, name)
    assert ready["reason"] == "QueuesDeclared"

    queues = {q: existing(rabbit, q) for q in (work, f"{work}.retry.1s", f"{work}.retry.30s", dead)}
    assert all(q["durable"] and q["type"] == "classic" for q in queues.values())
    assert queues[work]["arguments"] == {
        "x-queue-type": "classic",
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead,
        "x-message-ttl": 600_000,
    }
    assert queues[f"{work}.retry.30s"]["arguments"] == {
        "x-queue-type": "classic",
        "x-message-ttl": 30_000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": work,
    }
    assert direct.get(PLURAL, name)["status"]["queues"] == {
        "work": work,
        "retry": [f"{work}.retry.1s", f"{work}.retry.30s"],
        "deadLetter": dead,
    }

    # A message parked in the 1 s retry queue comes back to the work queue on its own ...
    rabbit.publish(f"{work}.retry.1s", 1, b"parked")
    wait_until(lambda: rabbit.ready_messages(work) == 1, message="retry returned to work queue")
    # ... and a rejected one lands in the dead-letter queue.
    assert rabbit.reject_one(work) == b"parked"
    wait_until(lambda: rabbit.ready_messages(dead) == 1, message="rejected message dead-lettered")

    rabbit.publish(work, 3)

    def counted() -> dict[str, Any] | None:
        status: dict[str, Any] = direct.get(PLURAL, name)["status"]
        return (
            status if (status.get("messages"), status.get("deadLetterMessages")) == (3, 1) else None
        )

    status = wait_until(counted, timeout=30, message="status counts work and dead-letter messages")
    assert (status["messagesReady"], status["messagesUnacknowledged"], status["consumers"]) == (
        3,
        0,
        0,
    )

    direct.delete(PLURAL, name)
    direct.wait_gone(PLURAL, name)
    assert rabbit.queue(work) is None
    assert rabbit.queue(f"{work}.retry.1s") is None
    assert rabbit.queue(dead) is not None, "the dead-letter queue is kept"
    rabbit.delete(dead)


def test_changed_delays_add_queues_and_drop_empty_old_ones(
    direct: Resources, rabbit: RabbitAdmin
) -> None:
    name = unique("sms")
    work = f"test.{name}"
    direct.create(
        PLURAL, name, {"queueName": work, "type": "classic", "retryDelaysSeconds": [5]}, KIND
    )
    direct.wait_ready(PLURAL, name)
    existing(rabbit, f"{work}.retry.5s")
    direct.patch_spec(PLURAL, name, {"retryDelaysSeconds": [10]})
    wait_until(lambda: rabbit.queue(f"{work}.retry.10s") is not None, message="new retry queue")
    wait_until(lambda: rabbit.queue(f"{work}.retry.5s") is None, message="old retry queue gone")
    direct.wait_ready(PLURAL, name)

    direct.delete(PLURAL, name)
    direct.wait_gone(PLURAL, name)
    assert rabbit.queue(work) is not None, "deletionPolicy defaults to Retain"
    for queue in (work, f"{work}.retry.10s", f"{work}.dlq"):
        rabbit.delete(queue)


def test_quorum_topology_limits_deliveries_and_dead_letters_at_least_once(
    direct: Resources, rabbit: RabbitAdmin
) -> None:
    name = unique("push")
    work, retry, dead = f"test.{name}", f"test.{name}.retry.2s", f"test.{name}.dlq"
    spec = {
        "queueName": work,
        "maxAttempts": 4,
        "retryDelaysSeconds": [2],
        "deletionPolicy": "Delete",
    }
    direct.create(PLURAL, name, spec, KIND)
    assert direct.wait_ready(PLURAL, name)["reason"] == "QueuesDeclared"
    queues = [existing(rabbit, q) for q in (work, retry, dead)]
    assert [q["type"] for q in queues] == ["quorum"] * 3
    at_least_once = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    assert queues[0]["arguments"] == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead,
        "x-delivery-limit": 4,
        **at_least_once,
    }
    assert queues[1]["arguments"] == {
        "x-queue-type": "quorum",
        "x-message-ttl": 2000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": work,
        **at_least_once,
    }
    assert queues[2]["arguments"] == {"x-queue-type": "quorum"}

    # The broker runs the at-least-once strategy: a parked message comes back to the work queue,
    # and a rejected one reaches the dead-letter queue.
    rabbit.publish(retry, 1, b"parked")
    wait_until(lambda: rabbit.ready_messages(work) == 1, message="retry returned to work queue")
    assert rabbit.reject_one(work) == b"parked"
    wait_until(lambda: rabbit.ready_messages(dead) == 1, message="rejected message dead-lettered")

    direct.delete(PLURAL, name)
    direct.wait_gone(PLURAL, name)
    assert rabbit.queue(work) is None
    assert rabbit.queue(f"{work}.retry.2s") is None
    rabbit.delete(f"{work}.dlq")


def test_existing_queue_with_other_arguments_is_reported_and_left_alone(
    direct: Resources, rabbit: RabbitAdmin
) -> None:
    name = unique("conflict")
    work = f"test.{name}"
    rabbit.declare(work, {"x-queue-type": "classic", "x-message-ttl": 1000})
    direct.create(
        PLURAL,
        name,
        {
            "queueName": work,
            "type": "classic",
            "retryDelaysSeconds": [5],
            "deletionPolicy": "Delete",
        },
        KIND,
    )
    conflict = direct.wait_ready(PLURAL, name, status="False")
    assert conflict["reason"] == "QueueArgumentsConflict"
    assert "x-message-ttl" in conflict["message"]
    assert existing(rabbit, work)["arguments"] == {"x-queue-type": "classic", "x-message-ttl": 1000}
    # The rest of the topology is still declared.
    assert rabbit.queue(f"{work}.retry.5s") is not None

    direct.delete(PLURAL, name)
    direct.wait_gone(PLURAL, name)
    rabbit.delete(f"{work}.dlq")
    rabbit.delete(work)
