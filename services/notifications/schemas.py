"""Request and response bodies of the notifications API (camelCase JSON)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import EmailStr, Field, StrictBool, computed_field

from services.kit.models import CamelModel, RequestModel
from services.notifications.domain import Channel, EventType

MAX_PAGE_SIZE = 100
Phone = Annotated[
    str, Field(pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164, such as +4930123456")
]


class NotificationOut(CamelModel):
    id: uuid.UUID
    event_type: str
    order_id: uuid.UUID
    order_version: int
    title: str
    body: str
    data: dict[str, Any]
    read_at: datetime | None
    created_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def read(self) -> bool:
        return self.read_at is not None


class NotificationPage(CamelModel):
    items: list[NotificationOut]
    next_cursor: str | None
    unread_count: int


class UnreadCount(CamelModel):
    unread_count: int


class ReadAll(CamelModel):
    marked: int
    """How many notifications this call marked read."""
    unread_count: int


class PreferencesIn(RequestModel):
    """Replaces the preferences. An event type or channel left out takes its default; `email`
    left out is the caller's sign-in email, `null` is none."""

    channels: dict[EventType, dict[Channel, StrictBool]] = Field(default_factory=dict)
    email: EmailStr | None = None
    phone: Phone | None = None


class PreferencesOut(CamelModel):
    channels: dict[EventType, dict[Channel, bool]]
    """Every event type and channel, as it applies now (the user's choice or the default)."""
    defaults: dict[Channel, bool]
    in_app: bool = True
    """Always on: every event reaches the in-app center."""
    email: str | None
    phone: str | None
    updated_at: datetime | None
    """None while the user has not saved preferences."""


class AttemptOut(CamelModel):
    attempt: int
    outcome: str
    """sent, retry (a transient failure: tried again later), failed (dead-lettered) or
    duplicate (a copy of a message already sent: not sent again)."""
    provider_response: str | None
    duration_ms: float | None
    created_at: datetime


class DeliveryOut(CamelModel):
    id: uuid.UUID
    channel: str
    status: str
    """pending, queued, sending, retrying, sent, dead, discarded or skipped."""
    recipient: str | None
    reason: str | None
    queue: str
    attempts: int
    created_at: datetime
    queued_at: datetime | None
    sent_at: datetime | None
    attempt_log: list[AttemptOut] = Field(default_factory=list)


class TrailEntry(NotificationOut):
    user_id: str
    event_id: uuid.UUID
    deliveries: list[DeliveryOut]


class OrderTrail(CamelModel):
    order_id: uuid.UUID
    notified_version: int | None
    """The newest order version notified; older events are suppressed."""
    notifications: list[TrailEntry]


DeadLetterStatus = Literal["dead", "replayed", "discarded"]


class DeadLetterOut(CamelModel):
    id: uuid.UUID
    delivery_id: uuid.UUID | None
    order_id: uuid.UUID | None
    event_type: str | None
    channel: str | None
    queue: str
    """The work queue it came from."""
    reason: str
    attempts: int
    status: DeadLetterStatus
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    message: dict[str, Any] | str
    """The message as it was dead-lettered (JSON, or its text when it is not JSON)."""


class DeadLetterPage(CamelModel):
    items: list[DeadLetterOut]
    next_cursor: str | None
