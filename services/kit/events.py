"""The event envelope and topics: the contract between services.

Events are CloudEvents 1.0 in structured JSON mode: the attributes id, source, type,
specversion, time, subject and datacontenttype, the extension `schemaversion` (the version of
the data's shape), and typed `data`. Kafka messages are keyed by the subject (the order id) so
all events of one order stay in order on one partition. Event types are past-tense facts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

from services.kit.ids import new_id

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/cloudevents+json"

DataT = TypeVar("DataT", bound=BaseModel)


class Envelope(BaseModel, Generic[DataT]):
    """A CloudEvents 1.0 envelope around typed data."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=lambda: str(new_id()))
    source: str
    type: str
    specversion: str = SPEC_VERSION
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str
    datacontenttype: str = "application/json"
    schemaversion: int = 1
    data: DataT

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", by_alias=True))


@cache
def envelope_type(data_type: type[DataT]) -> type[Envelope[DataT]]:
    """`Envelope[data_type]`, built once per data class and kept.

    pydantic caches a parametrised model only weakly (unless the subscript runs at a module's
    top level), and the class sits in reference cycles: once no envelope of that type is alive,
    the next full garbage collection frees it, and the next subscript builds the class and its
    validator again, about 2 ms of CPU. Holding it here makes every later call a lookup."""
    return Envelope[data_type]  # type: ignore[valid-type]


def parse_envelope(raw: bytes | str, data_type: type[DataT]) -> Envelope[DataT]:
    """Parse a structured-mode CloudEvent whose data has the shape `data_type`."""
    payload: dict[str, Any] = orjson.loads(raw)
    if payload.get("specversion") != SPEC_VERSION:
        raise ValueError(f"unsupported CloudEvents specversion {payload.get('specversion')!r}")
    return envelope_type(data_type).model_validate(payload)


def peek_attributes(raw: bytes | str) -> dict[str, Any]:
    """The envelope's attributes without validating its data (for routing and dedupe)."""
    payload: dict[str, Any] = orjson.loads(raw)
    return {k: v for k, v in payload.items() if k != "data"}
