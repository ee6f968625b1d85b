"""The analytics service's domain errors; each carries its HTTP status (services.kit.errors)."""

from __future__ import annotations

from services.kit.errors import InvalidInput, UpstreamUnavailable


class InvalidRange(InvalidInput):
    code = "invalid-range"


class InvalidCursor(InvalidInput):
    code = "invalid-cursor"

    def __init__(self) -> None:
        super().__init__("The cursor is not valid; start again without one.")


class BrokerDown(UpstreamUnavailable):
    code = "broker-unavailable"

    def __init__(self, broker: str, why: str) -> None:
        super().__init__(f"{broker} did not answer: {why}", broker=broker)
