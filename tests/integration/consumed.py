"""Kafka messages as the consumer shell reads them, to hand a group of events to
`EventShell.apply_group` without a broker."""

from __future__ import annotations

from typing import Any, cast

from confluent_kafka import Message

from services.kit.events import Envelope


class ConsumedMessage:
    """What the shell reads of a consumed message: topic, value, headers, partition, offset."""

    def __init__(self, topic: str, envelope: Envelope[Any], offset: int) -> None:
        self._topic, self._value, self._offset = topic, envelope.to_bytes(), offset

    def topic(self) -> str:
        return self._topic

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return []

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


def as_messages(*events: tuple[str, Envelope[Any]], first_offset: int = 0) -> list[Message]:
    """`(topic, envelope)` pairs as a batch of consumed messages, in offset order."""
    return [
        cast("Message", ConsumedMessage(topic, envelope, first_offset + i))
        for i, (topic, envelope) in enumerate(events)
    ]
