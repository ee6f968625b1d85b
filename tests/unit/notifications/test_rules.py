"""The pure rules: which channels an event goes to, where, and which events are stale."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.notifications.domain import (
    CRITICAL_EVENTS,
    DEFAULT_CHANNELS,
    Channel,
    EventType,
    OrderFacts,
    Preferences,
    enabled_channels,
    in_app_text,
    is_newer,
    recipient,
    resolved_channels,
)

ORDER_ID = "5b0f6d1e-0000-4000-8000-000000000001"


def test_defaults_are_email_and_push_but_not_sms() -> None:
    assert dict(DEFAULT_CHANNELS) == {Channel.EMAIL: True, Channel.SMS: False, Channel.PUSH: True}
    for event_type in EventType:
        assert enabled_channels(event_type, Preferences()) == [Channel.EMAIL, Channel.PUSH]


def test_a_choice_applies_to_its_event_type_and_channel_only() -> None:
    preferences = Preferences(
        channels={EventType.SHIPPED: {Channel.SMS: True, Channel.EMAIL: False}}
    )
    assert enabled_channels(EventType.SHIPPED, preferences) == [Channel.SMS, Channel.PUSH]
    assert enabled_channels(EventType.CONFIRMED, preferences) == [Channel.EMAIL, Channel.PUSH]


def test_everything_off_leaves_no_channel() -> None:
    off = {event: {channel: False for channel in Channel} for event in EventType}
    assert all(enabled_channels(e, Preferences(channels=off)) == [] for e in EventType)


def test_the_enabled_channels_are_the_resolved_matrix_row() -> None:
    choices = [
        {},
        {EventType.SHIPPED: {Channel.SMS: True, Channel.EMAIL: False}},
        {EventType.CREATED: {Channel.PUSH: False}, EventType.FAILED: {Channel.SMS: True}},
        {event: {channel: False for channel in Channel} for event in EventType},
    ]
    for channels in choices:
        preferences = Preferences(channels=channels)
        matrix = resolved_channels(preferences)
        for event_type in EventType:
            row = [channel for channel in Channel if matrix[event_type][channel]]
            assert enabled_channels(event_type, preferences) == row


def test_the_resolved_matrix_names_every_event_type_and_channel() -> None:
    matrix = resolved_channels(Preferences(channels={EventType.FAILED: {Channel.PUSH: False}}))
    assert set(matrix) == set(EventType)
    assert all(set(row) == set(Channel) for row in matrix.values())
    assert matrix[EventType.FAILED][Channel.PUSH] is False


def test_recipients_come_from_the_preferences_and_push_goes_to_the_user() -> None:
    known = Preferences(email="ada@example.org", phone="+4930123456")
    assert recipient(Channel.EMAIL, known, "u-1") == "ada@example.org"
    assert recipient(Channel.SMS, known, "u-1") == "+4930123456"
    assert recipient(Channel.PUSH, known, "u-1") == "u-1"
    assert recipient(Channel.EMAIL, Preferences(), "u-1") is None
    assert recipient(Channel.SMS, Preferences(), "u-1") is None


@pytest.mark.parametrize(
    ("version", "newest", "newer"),
    [(1, None, True), (2, 1, True), (2, 2, False), (2, 4, False), (5, 4, True)],
)
def test_only_a_newer_version_than_the_newest_notified_is_notified(
    version: int, newest: int | None, newer: bool
) -> None:
    assert is_newer(version, newest) is newer


def test_confirmed_after_delivered_is_stale() -> None:
    # Delivered is version 4 of an order; inventory's confirmation answered version 1 (as 2).
    assert not is_newer(2, 4)


def _facts(event_type: EventType, reason: str | None = None) -> OrderFacts:
    return OrderFacts(
        event_type=event_type,
        order_id=ORDER_ID,
        user_id="u-1",
        version=2,
        status="X",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        reason=reason,
    )


def test_every_event_type_has_an_in_app_title_and_body_naming_the_order() -> None:
    for event_type in EventType:
        title, body = in_app_text(_facts(event_type))
        assert title
        assert ORDER_ID[:8] in body


def test_critical_events_carry_their_reason() -> None:
    assert {EventType.FAILED, EventType.CANCELLED} == CRITICAL_EVENTS
    _, body = in_app_text(_facts(EventType.FAILED, "out of stock"))
    assert body.endswith(": out of stock.")
    _, body = in_app_text(_facts(EventType.CANCELLED))
    assert body.endswith("was cancelled.")
