"""Publishing with confirms on a real RabbitMQ: a confirmed message is on the queue, an
unroutable one raises instead of vanishing, and a closed publisher reconnects."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pika
import pytest
from pika.exceptions import UnroutableError

from services.kit.rabbit import ConfirmingPublisher

pytestmark = pytest.mark.integration


@pytest.fixture
def queue(rabbitmq_server: Any) -> Iterator[str]:
    name = f"kit-test-{uuid.uuid4().hex[:8]}"
    with pika.BlockingConnection(pika.URLParameters(rabbitmq_server.amqp_url)) as connection:
        connection.channel().queue_declare(name, durable=True)
    yield name
    with pika.BlockingConnection(pika.URLParameters(rabbitmq_server.amqp_url)) as connection:
        connection.channel().queue_delete(name)


def _get(url: str, queue: str) -> tuple[Any, bytes | None] | None:
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        method, properties, body = connection.channel().basic_get(queue, auto_ack=True)
        return None if method is None else (properties, body)


def test_a_confirmed_message_is_persistent_and_on_the_queue(
    rabbitmq_server: Any, queue: str
) -> None:
    publisher = ConfirmingPublisher(rabbitmq_server.amqp_url, app_id="kit-test")
    try:
        publisher.publish("", queue, b'{"n": 1}', message_id="m-1", headers={"attempt": "1"})
    finally:
        publisher.close()
    got = _get(rabbitmq_server.amqp_url, queue)
    assert got is not None
    properties, body = got
    assert body == b'{"n": 1}'
    assert properties.message_id == "m-1"
    assert properties.delivery_mode == pika.DeliveryMode.Persistent.value
    assert properties.headers == {"attempt": "1"}
    assert properties.app_id == "kit-test"


def test_an_unroutable_message_raises(rabbitmq_server: Any) -> None:
    publisher = ConfirmingPublisher(rabbitmq_server.amqp_url, app_id="kit-test")
    try:
        with pytest.raises(UnroutableError):
            publisher.publish("", f"no-such-queue-{uuid.uuid4().hex}", b"x", message_id="m-2")
    finally:
        publisher.close()


def test_publishing_after_close_opens_a_new_connection(rabbitmq_server: Any, queue: str) -> None:
    publisher = ConfirmingPublisher(rabbitmq_server.amqp_url, app_id="kit-test")
    try:
        publisher.publish("", queue, b"first", message_id="m-3")
        publisher.close()
        publisher.publish("", queue, b"second", message_id="m-4")
    finally:
        publisher.close()
    bodies = [_get(rabbitmq_server.amqp_url, queue), _get(rabbitmq_server.amqp_url, queue)]
    assert [b[1] for b in bodies if b is not None] == [b"first", b"second"]
