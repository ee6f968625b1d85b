"""Pure rules of the notifications service: event types, channels, preferences, staleness.

No I/O: these decide, the service applies. Unit-tested in tests/unit/notifications/.

- Every consumed order event makes one in-app notification (the in-app center is not a
  preference: critical events such as a failed or cancelled order always reach it).
- The other channels (email, sms, push) follow the user's preferences per event type; what the
  user never set takes `DEFAULT_CHANNELS` (email on, sms off, push on).
- A channel needs a recipient: an email address for email, a phone number for sms (both from
  the user's preferences); push goes to the user id. An enabled channel without a recipient is
  recorded as skipped, never published.
- An event is stale when its order version is not newer than the newest version already
  notified for that order: so no "confirmed" message after "delivered".
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from services.kit.order_events import (
    ORDER_CANCELLED,
    ORDER_CONFIRMED,
    ORDER_CREATED,
    ORDER_DELIVERED,
    ORDER_FAILED,
    ORDER_SHIPPED,
)


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"


class EventType(enum.StrEnum):
    """The order events a user is notified of (their Kafka topics)."""

    CREATED = ORDER_CREATED
    CONFIRMED = ORDER_CONFIRMED
    FAILED = ORDER_FAILED
    SHIPPED = ORDER_SHIPPED
    DELIVERED = ORDER_DELIVERED
    CANCELLED = ORDER_CANCELLED


DEFAULT_CHANNELS: Mapping[Channel, bool] = {
    Channel.EMAIL: True,
    Channel.SMS: False,
    Channel.PUSH: True,
}
CRITICAL_EVENTS = frozenset({EventType.FAILED, EventType.CANCELLED})

ChannelMatrix = dict[EventType, dict[Channel, bool]]


@dataclass(frozen=True, slots=True)
class Preferences:
    """What a user chose: `channels` holds only what they set (the rest takes the defaults)."""

    channels: Mapping[EventType, Mapping[Channel, bool]] = field(default_factory=dict)
    email: str | None = None
    phone: str | None = None


def resolved_channels(preferences: Preferences) -> ChannelMatrix:
    """Every event type and channel, on or off: the user's choice, else the default."""
    return {event_type: _row(event_type, preferences) for event_type in EventType}


def enabled_channels(event_type: EventType, preferences: Preferences) -> list[Channel]:
    """The channels (besides in-app) on which `event_type` is sent, in a fixed order: its row
    of `resolved_channels`, without making the others (this runs for every consumed event)."""
    return [channel for channel, on in _row(event_type, preferences).items() if on]


def _row(event_type: EventType, preferences: Preferences) -> dict[Channel, bool]:
    """`event_type`'s channels, on or off, in `DEFAULT_CHANNELS`' order."""
    chosen = preferences.channels.get(event_type, {})
    return {channel: chosen.get(channel, default) for channel, default in DEFAULT_CHANNELS.items()}


def recipient(channel: Channel, preferences: Preferences, user_id: str) -> str | None:
    """Where `channel` reaches the user, or None when no address is known."""
    if channel is Channel.EMAIL:
        return preferences.email
    if channel is Channel.SMS:
        return preferences.phone
    return user_id


def is_newer(version: int, newest_notified: int | None) -> bool:
    """Whether an event of order `version` is worth notifying after `newest_notified`."""
    return newest_notified is None or version > newest_notified


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What an order event says, reduced to what notifications show."""

    event_type: EventType
    order_id: str
    user_id: str
    version: int
    status: str
    occurred_at: datetime
    total: Decimal | None = None
    currency: str | None = None
    reason: str | None = None
    items: tuple[tuple[str, int], ...] = ()
    """(name, quantity) of each line, for order.created."""


STATUS_OF: Mapping[EventType, str] = {
    EventType.CREATED: "CREATED",
    EventType.CONFIRMED: "CONFIRMED",
    EventType.FAILED: "FAILED",
    EventType.SHIPPED: "SHIPPED",
    EventType.DELIVERED: "DELIVERED",
    EventType.CANCELLED: "CANCELLED",
}

_TITLES: Mapping[EventType, str] = {
    EventType.CREATED: "Order received",
    EventType.CONFIRMED: "Order confirmed",
    EventType.FAILED: "Order could not be placed",
    EventType.SHIPPED: "Order shipped",
    EventType.DELIVERED: "Order delivered",
    EventType.CANCELLED: "Order cancelled",
}


def short_id(order_id: str) -> str:
    return order_id[:8]


def in_app_text(facts: OrderFacts) -> tuple[str, str]:
    """The title and body of the in-app notification of `facts`."""
    order = f"Your order {short_id(facts.order_id)}"
    bodies: Mapping[EventType, str] = {
        EventType.CREATED: f"{order} was received and is being reserved.",
        EventType.CONFIRMED: f"{order} is confirmed.",
        EventType.FAILED: f"{order} could not be placed",
        EventType.SHIPPED: f"{order} is on its way.",
        EventType.DELIVERED: f"{order} was delivered.",
        EventType.CANCELLED: f"{order} was cancelled",
    }
    body = bodies[facts.event_type]
    if facts.event_type in CRITICAL_EVENTS:
        body += f": {facts.reason}." if facts.reason else "."
    return _TITLES[facts.event_type], body
