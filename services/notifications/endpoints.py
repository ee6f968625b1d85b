"""The notifications HTTP API: thin handlers over `NotificationService` (see the README)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from services.kit.security import CurrentAdmin, CurrentUser
from services.notifications.domain import DEFAULT_CHANNELS, Preferences, resolved_channels
from services.notifications.schemas import (
    MAX_PAGE_SIZE,
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


def _service(request: Request) -> NotificationService:
    service: NotificationService = request.app.state.notifications
    return service


Notifications = Annotated[NotificationService, Depends(_service)]


@router.get("", operation_id="listNotifications")
async def list_notifications(
    principal: CurrentUser,
    notifications: Notifications,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
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
