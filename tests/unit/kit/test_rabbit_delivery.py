"""A delivery read from aiormq's consumer callback (services/kit/rabbit_consumer.py): its fields,
and one ack or nack, never two."""

from __future__ import annotations

from typing import Any

import pytest
from aiormq.abc import DeliveredMessage
from pamqp import commands
from pamqp.header import ContentHeader

from services.kit.rabbit_consumer import Delivery


class Channel:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, dict[str, Any]]] = []

    async def basic_ack(self, delivery_tag: int, **options: Any) -> None:
        self.calls.append(("ack", delivery_tag, options))

    async def basic_nack(self, delivery_tag: int, **options: Any) -> None:
        self.calls.append(("nack", delivery_tag, options))


def _delivered(channel: Channel, **properties: Any) -> DeliveredMessage:
    return DeliveredMessage(
        delivery=commands.Basic.Deliver(consumer_tag="c", delivery_tag=42, routing_key="q"),
        header=ContentHeader(properties=commands.Basic.Properties(**properties), body_size=2),
        body=b"{}",
        channel=channel,  # type: ignore[arg-type]
    )


def test_a_delivery_carries_the_messages_body_properties_and_tag() -> None:
    delivery = Delivery.of(
        _delivered(
            Channel(),
            headers={"attempt": 2},
            message_id="m-1",
            content_type="application/json",
        )
    )

    assert (delivery.body, delivery.delivery_tag) == (b"{}", 42)
    assert (delivery.message_id, delivery.content_type) == ("m-1", "application/json")
    assert delivery.headers == {"attempt": 2}


def test_a_message_without_headers_has_none() -> None:
    assert Delivery.of(_delivered(Channel())).headers == {}


async def test_a_delivery_is_acked_or_nacked_once() -> None:
    channel = Channel()
    acked, nacked = Delivery.of(_delivered(channel)), Delivery.of(_delivered(channel))

    await acked.ack()
    await nacked.nack(requeue=True)
    with pytest.raises(RuntimeError, match="already"):
        await acked.nack()
    with pytest.raises(RuntimeError, match="already"):
        await nacked.ack()

    assert channel.calls == [("ack", 42, {}), ("nack", 42, {"requeue": True})]
