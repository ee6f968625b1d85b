"""The notifications HTTP API: thin handlers over `NotificationService` (see the README)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request

from services.kit.models import Text
from services.kit.security import CurrentAdmin, CurrentUser
from services.notifications.dead_letters import DeadLetterRow
from services.notifications.domain import (
    DEFAULT_CHANNELS,
    Channel,
    Preferences,
    resolved_channels,
)
from services.notifications.schemas import (
    MAX_PAGE_SIZE,
    DeadLetterOut,
    DeadLetterPage,
    DeadLetterStatus,
    DeliveryOut,
    NotificationOut,
    NotificationPage,
    OrderTrail,
    PreferencesIn,
    PreferencesOut,
    ReadAll,
    TrailEntry,
)
from services.notifications.service import NotificationService, PreferencesView

router = APIRouter(prefix="/notifications", tags=["notifications"])


async def _service(request: Request) -> NotificationService:
    service: NotificationService = request.app.state.notifications
    return service


Notifications = Annotated[NotificationService, Depends(_service)]


@router.get("", operation_id="listNotifications")
async def list_notifications(
    principal: CurrentUser,
    notifications: Notifications,
    cursor: Annotated[Text | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
) -> NotificationPage:
    """The caller's notifications, newest first, with their unread count."""
    page = await notifications.list_notifications(principal, cursor=cursor, limit=limit)
    return NotificationPage(
        items=[NotificationOut.model_validate(row) for row in page.rows],
        next_cursor=page.next_cursor,
        unread_count=page.unread_count,
    )


@router.get("/preferences", operation_id="getNotificationPreferences")
async def get_preferences(principal: CurrentUser, notifications: Notifications) -> PreferencesOut:
    return _preferences_out(await notifications.get_preferences(principal))


@router.put("/preferences", operation_id="putNotificationPreferences")
async def put_preferences(
    body: PreferencesIn, principal: CurrentUser, notifications: Notifications
) -> PreferencesOut:
    email = body.email if "email" in body.model_fields_set else (principal.email or None)
    preferences = Preferences(channels=body.channels, email=email, phone=body.phone)
    return _preferences_out(await notifications.put_preferences(principal, preferences))


@router.post("/read-all", operation_id="readAllNotifications")
async def read_all(principal: CurrentUser, notifications: Notifications) -> ReadAll:
    marked = await notifications.mark_all_read(principal)
    return ReadAll(marked=marked, unread_count=await notifications.unread_count(principal))


@router.post("/{notification_id}/read", operation_id="readNotification")
async def read_one(
    notification_id: uuid.UUID, principal: CurrentUser, notifications: Notifications
) -> NotificationOut:
    return NotificationOut.model_validate(await notifications.mark_read(principal, notification_id))


@router.get("/dlq", operation_id="listDeadLetters")
async def list_dead_letters(
    _admin: CurrentAdmin,
    notifications: Notifications,
    status: DeadLetterStatus | None = "dead",
    channel: Channel | None = None,
    order_id: Annotated[uuid.UUID | None, Query(alias="orderId")] = None,
    cursor: Annotated[Text | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
) -> DeadLetterPage:
    """Dead letters, newest first (admins only): by default those waiting for a decision;
    `status` also shows the replayed or discarded ones."""
    rows, next_cursor = await notifications.dead_letters(
        status=status,
        channel=str(channel) if channel else None,
        order_id=order_id,
        cursor=cursor,
        limit=limit,
    )
    return DeadLetterPage(items=[_dead_letter_out(r) for r in rows], next_cursor=next_cursor)


@router.post("/dlq/{dead_letter_id}/replay", operation_id="replayDeadLetter")
async def replay_dead_letter(
    dead_letter_id: uuid.UUID, admin: CurrentAdmin, notifications: Notifications
) -> DeadLetterOut:
    """Send the dead letter's delivery again, once (admins only); 409 when it was replayed or
    discarded already, or is not a delivery (a malformed message)."""
    return _dead_letter_out(await notifications.replay(admin, dead_letter_id))


@router.post("/dlq/{dead_letter_id}/discard", operation_id="discardDeadLetter")
async def discard_dead_letter(
    dead_letter_id: uuid.UUID, admin: CurrentAdmin, notifications: Notifications
) -> DeadLetterOut:
    """Give up on the dead letter, keeping it for the record (admins only)."""
    return _dead_letter_out(await notifications.discard(admin, dead_letter_id))


@router.get("/orders/{order_id}", operation_id="getOrderNotificationTrail")
async def order_trail(
    order_id: uuid.UUID, _admin: CurrentAdmin, notifications: Notifications
) -> OrderTrail:
    """Every notification of an order and its deliveries: the delivery trail (admins only)."""
    trail = await notifications.order_trail(order_id)
    return OrderTrail(
        order_id=trail.order_id,
        notified_version=trail.notified_version,
        notifications=[
            TrailEntry.model_validate(
                {
                    **NotificationOut.model_validate(row).model_dump(),
                    "user_id": row.user_id,
                    "event_id": row.event_id,
                    "deliveries": [DeliveryOut.model_validate(d) for d in deliveries],
                }
            )
            for row, deliveries in trail.notifications
        ],
    )


def _preferences_out(view: PreferencesView) -> PreferencesOut:
    return PreferencesOut(
        channels=resolved_channels(view.preferences),
        defaults=dict(DEFAULT_CHANNELS),
        email=view.preferences.email,
        phone=view.preferences.phone,
        updated_at=view.updated_at,
    )


def _dead_letter_out(row: DeadLetterRow) -> DeadLetterOut:
    try:
        message: dict[str, Any] | str = orjson.loads(row.payload)
        if not isinstance(message, dict):
            message = row.payload.decode(errors="replace")
    except orjson.JSONDecodeError:
        message = row.payload.decode(errors="replace")
    return DeadLetterOut(
        id=row.id,
        delivery_id=row.delivery_id,
        order_id=row.order_id,
        event_type=row.event_type,
        channel=row.channel,
        queue=row.queue,
        reason=row.reason,
        attempts=row.attempts,
        status=row.status,
        created_at=row.created_at,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        message=message,
    )
