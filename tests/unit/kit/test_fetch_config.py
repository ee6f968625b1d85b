"""How long the broker holds a consumer's fetch (kit/kafka.py `fetch_config`)."""

from __future__ import annotations

from services.kit.kafka import FETCH_WAIT_MS, GATHER_MIN_BYTES, fetch_config


def test_a_consumer_an_order_waits_on_is_answered_as_soon_as_a_message_arrives() -> None:
    assert fetch_config(0) == {"fetch.wait.max.ms": FETCH_WAIT_MS, "fetch.min.bytes": 1}


def test_a_gathering_consumer_is_answered_after_its_wait_unless_much_arrives() -> None:
    config = fetch_config(100)
    assert config["fetch.wait.max.ms"] == 100
    assert config["fetch.min.bytes"] == GATHER_MIN_BYTES
