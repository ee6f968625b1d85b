from __future__ import annotations

import gc
import time
import uuid
import weakref
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from pydantic import BaseModel

from services.kit.events import envelope_type, parse_envelope, peek_attributes
from services.kit.order_events import ORDER_CREATED, OrderCreated, OrderLine
from services.kit.outbox import event


def _created() -> OrderCreated:
    line = OrderLine(
        product_id="p-1",
        sku="SKU-1",
        name="Mug",
        quantity=2,
        unit_price=Decimal("4.50"),
        line_total=Decimal("9.00"),
    )
    return OrderCreated(
        order_id="o-1",
        user_id="u-1",
        version=1,
        items=[line],
        total=Decimal("9.00"),
        currency="EUR",
        created_at=datetime(2026, 1, 2, tzinfo=UTC),
    )


def test_envelope_carries_cloudevents_attributes_and_camel_case_data() -> None:
    envelope = event("/orders", ORDER_CREATED, "o-1", _created())
    wire = orjson.loads(envelope.to_bytes())
    assert {"id", "source", "type", "specversion", "time", "subject", "datacontenttype"} <= set(
        wire
    )
    assert wire["specversion"] == "1.0"
    assert wire["schemaversion"] == 1
    assert wire["subject"] == "o-1"
    assert wire["data"]["orderId"] == "o-1"
    assert wire["data"]["items"][0]["unitPrice"] == "4.50"


def test_envelope_round_trip_keeps_typed_data() -> None:
    envelope = event("/orders", ORDER_CREATED, "o-1", _created())
    parsed = parse_envelope(envelope.to_bytes(), OrderCreated)
    assert parsed.id == envelope.id
    assert parsed.data == _created()
    assert peek_attributes(envelope.to_bytes())["type"] == ORDER_CREATED


def test_unknown_specversion_is_refused() -> None:
    raw = orjson.loads(event("/orders", ORDER_CREATED, "o-1", _created()).to_bytes())
    raw["specversion"] = "0.3"
    with pytest.raises(ValueError, match="specversion"):
        parse_envelope(orjson.dumps(raw), OrderCreated)


def test_a_new_envelope_gets_a_time_ordered_id() -> None:
    first = event("/orders", ORDER_CREATED, "o-1", _created())
    time.sleep(0.002)
    second = event("/orders", ORDER_CREATED, "o-1", _created())

    assert uuid.UUID(first.id).version == 7
    assert uuid.UUID(first.id).bytes < uuid.UUID(second.id).bytes


def test_an_envelope_class_outlives_its_envelopes_and_a_full_collection() -> None:
    """Parsing or building an event after every envelope of its type was freed and a full
    collection ran reuses the envelope class instead of building it (and its validator) again."""

    class Note(BaseModel):
        text: str

    def built_and_dropped() -> weakref.ref[type]:
        envelope = event("/notes", "note.written", "n-1", Note(text="hi"))
        parsed = parse_envelope(envelope.to_bytes(), Note)
        assert type(parsed) is type(envelope)
        return weakref.ref(type(envelope))

    first = built_and_dropped()
    gc.collect()
    assert first() is not None
    assert envelope_type(Note) is first()
    second = built_and_dropped()
    assert second() is first()
