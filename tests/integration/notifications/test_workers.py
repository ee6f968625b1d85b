"""The channel workers on real RabbitMQ, PostgreSQL, Kafka, an SMTP server (Mailpit) and an
HTTP provider: every message is sent once, whatever fails.

The module runs the notifications app and one worker per channel in-process, with retry delays
of 1 and 2 seconds and 3 attempts (its own RabbitMQ virtual host, so its own retry queues).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg.rows import DictRow

from devstack.testing import MailpitServer
from services.kit.consumer import EventShell
from services.kit.order_events import ORDER_DELIVERED
from services.kit.rabbit import Outgoing, Publisher
from services.notifications.domain import Channel, EventType
from services.notifications.messages import NotificationMessage, TemplateData
from services.notifications.settings import Settings
from tests.integration.notifications.providers import ProviderDouble
from tests.integration.notifications.support import (
    FAST_RETRIES,
    confirmed,
    delivery,
    notification,
    set_preferences,
    status_changed,
)
from tests.support import Bearer, eventually

pytestmark = pytest.mark.integration

ALL_ON = {"email": True, "sms": True, "push": True}


@pytest.fixture(scope="module")
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update=FAST_RETRIES)


async def _prefer(client: httpx.AsyncClient, user: Bearer, **channels: dict[str, bool]) -> None:
    body = {
        "channels": {f"order.{event}": choice for event, choice in channels.items()},
        "email": f"{user.id[:8]}@example.org",
        "phone": "+4930123456",
    }
    await set_preferences(client, user, body)


async def _confirm(shell: EventShell[Any], user: Bearer, order_id: str | None = None) -> str:
    order_id = order_id or str(uuid.uuid4())
    topic, envelope = confirmed(order_id, user.id)
    await shell.handle(topic, envelope.to_bytes())
    return order_id


def _deliveries(db: psycopg.Connection[DictRow], order_id: str) -> dict[str, dict[str, Any]]:
    rows = db.execute(
        """
        SELECT d.* FROM deliveries d JOIN notifications n ON n.id = d.notification_id
        WHERE n.order_id = %s
        """,
        (order_id,),
    ).fetchall()
    return {row["channel"]: row for row in rows}


def _attempts(db: psycopg.Connection[DictRow], delivery_id: uuid.UUID) -> list[tuple[int, str]]:
    rows = db.execute(
        "SELECT attempt, outcome FROM delivery_attempts WHERE delivery_id = %s ORDER BY id",
        (delivery_id,),
    ).fetchall()
    return [(row["attempt"], row["outcome"]) for row in rows]


async def _statuses(
    db: psycopg.Connection[DictRow], order_id: str, wanted: dict[str, str]
) -> dict[str, dict[str, Any]]:
    async def reached() -> dict[str, dict[str, Any]] | None:
        rows = _deliveries(db, order_id)
        got = {channel: row["status"] for channel, row in rows.items()}
        return rows if got == wanted else None

    return await eventually(reached, within=45, what=f"deliveries {wanted}")


def _published(db: psycopg.Connection[DictRow], delivery: dict[str, Any]) -> bytes:
    """The message of `delivery` as the service published it, made again from its notification."""
    notification = db.execute(
        "SELECT * FROM notifications WHERE id = %s", (delivery["notification_id"],)
    ).fetchone()
    assert notification is not None
    return NotificationMessage(
        delivery_id=delivery["id"],
        notification_id=notification["id"],
        event_id=notification["event_id"],
        channel=Channel(delivery["channel"]),
        event_type=EventType(notification["event_type"]),
        order_id=str(notification["order_id"]),
        user_id=notification["user_id"],
        recipient=delivery["recipient"],
        created_at=notification["created_at"],
        data=TemplateData.model_validate(notification["data"]),
    ).to_bytes()


async def _mail(mailpit: MailpitServer, needle: str) -> list[dict[str, Any]]:
    messages = await asyncio.to_thread(mailpit.messages)
    return [m for m in messages if needle in str(m.get("Subject", ""))]


async def test_a_confirmed_order_reaches_every_channel_once(
    workers: dict[Channel, FastAPI],
    client: httpx.AsyncClient,
    shell: EventShell[Any],
    provider: ProviderDouble,
    mailpit_server: MailpitServer,
    db: psycopg.Connection[DictRow],
    user: Bearer,
) -> None:
    await _prefer(client, user, confirmed=ALL_ON)
    order_id = await _confirm(shell, user)
    rows = await _statuses(db, order_id, {"email": "sent", "sms": "sent", "push": "sent"})
    short = order_id[:8]

    mails = await eventually(lambda: _mail(mailpit_server, short), what="the email")
    assert len(mails) == 1
    mail = await asyncio.to_thread(mailpit_server.message, mails[0]["ID"])
    assert order_id in mail["Text"]
    assert mail["MessageID"] == f"{rows['email']['id']}@realtimeorder"
    assert [a["Address"] for a in mail["To"]] == [f"{user.id[:8]}@example.org"]

    (sms,) = provider.accepted_for(short, "/sms")
    assert sms.body["to"] == "+4930123456"
    assert sms.key == str(rows["sms"]["id"])
    (push,) = provider.accepted_for(order_id, "/push")
    assert push.body["userId"] == user.id
    assert push.body["data"]["eventType"] == "order.confirmed"
    for channel in ("email", "sms", "push"):
        assert _attempts(db, rows[channel]["id"]) == [(1, "sent")]

    page = await client.get("/notifications", headers=user.headers)
    assert [n["orderId"] for n in page.json()["items"]] == [order_id]


async def test_a_provider_down_twice_gets_the_message_on_the_third_attempt_once(
    workers: dict[Channel, FastAPI],
    client: httpx.AsyncClient,
    shell: EventShell[Any],
    provider: ProviderDouble,
    db: psycopg.Connection[DictRow],
    user: Bearer,
) -> None:
    await _prefer(client, user, confirmed={"email": False, "sms": True, "push": False})
    order_id = str(uuid.uuid4())
    provider.fail(order_id[:8], 503, 503)
    await _confirm(shell, user, order_id)
    rows = await _statuses(db, order_id, {"sms": "sent"})
    assert len(provider.requests_for(order_id[:8])) == 3
    assert len(provider.accepted_for(order_id[:8])) == 1
    assert _attempts(db, rows["sms"]["id"]) == [(1, "retry"), (2, "retry"), (3, "sent")]


async def test_a_provider_400_dead_letters_at_once_and_a_replay_delivers_once(
    workers: dict[Channel, FastAPI],
    client: httpx.AsyncClient,
    shell: EventShell[Any],
    provider: ProviderDouble,
    db: psycopg.Connection[DictRow],
    user: Bearer,
    admin: Bearer,
) -> None:
    await _prefer(client, user, confirmed={"email": False, "sms": False, "push": True})
    order_id = str(uuid.uuid4())
    provider.fail(order_id, 400)
    await _confirm(shell, user, order_id)
    rows = await _statuses(db, order_id, {"push": "dead"})
    assert rows["push"]["payload"] is None, "the row let the message go; its dead letter keeps it"
    assert len(provider.requests_for(order_id)) == 1, "a permanent failure is not retried"
    assert _attempts(db, rows["push"]["id"]) == [(1, "failed")]
    assert "400" in rows["push"]["reason"]

    async def listed() -> list[dict[str, Any]]:
        response = await client.get(
            "/notifications/dlq", params={"orderId": order_id}, headers=admin.headers
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    (dead,) = await eventually(listed, what="the dead letter listed")
    assert dead["channel"] == "push"
    assert dead["attempts"] == 1
    assert "400" in dead["reason"]
    assert dead["message"]["orderId"] == order_id

    replayed = await client.post(f"/notifications/dlq/{dead['id']}/replay", headers=admin.headers)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["status"] == "replayed"
    await _statuses(db, order_id, {"push": "sent"})
    assert len(provider.accepted_for(order_id)) == 1
    again = await client.post(f"/notifications/dlq/{dead['id']}/replay", headers=admin.headers)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    await asyncio.sleep(1.5)
    assert len(provider.accepted_for(order_id)) == 1


async def test_a_poison_message_is_dead_lettered_with_its_reason(
    workers: dict[Channel, FastAPI],
    client: httpx.AsyncClient,
    vhost_url: str,
    db: psycopg.Connection[DictRow],
    admin: Bearer,
) -> None:
    marker = f"poison-{uuid.uuid4().hex[:8]}"
    publisher = Publisher(vhost_url, app_id="tests")
    try:
        await publisher.publish_one(
            Outgoing(
                "sms.notifications", f'{{"schemaVersion": 99, "m": "{marker}"}}'.encode(), marker
            )
        )
    finally:
        await publisher.close()

    async def kept() -> dict[str, Any] | None:
        row: dict[str, Any] | None = db.execute(
            "SELECT * FROM dead_letters WHERE convert_from(payload, 'UTF8') LIKE %s",
            (f"%{marker}%",),
        ).fetchone()
        return row

    row = await eventually(kept, what="the poison message dead-lettered")
    assert row["reason"].startswith("malformed message")
    assert row["delivery_id"] is None
    replay = await client.post(f"/notifications/dlq/{row['id']}/replay", headers=admin.headers)
    assert replay.status_code == 409
    discard = await client.post(f"/notifications/dlq/{row['id']}/discard", headers=admin.headers)
    assert discard.status_code == 200
    assert discard.json()["status"] == "discarded"


async def test_a_copy_of_a_sent_message_is_not_sent_again(
    workers: dict[Channel, FastAPI],
    client: httpx.AsyncClient,
    shell: EventShell[Any],
    provider: ProviderDouble,
    vhost_url: str,
    db: psycopg.Connection[DictRow],
    user: Bearer,
) -> None:
    await _prefer(client, user, confirmed={"email": False, "sms": True, "push": False})
    order_id = await _confirm(shell, user)
    rows = await _statuses(db, order_id, {"sms": "sent"})
    sent = rows["sms"]
    assert sent["payload"] is None, "the broker had the message: the row let it go"
    publisher = Publisher(vhost_url, app_id="tests")
    try:
        await publisher.publish_one(
            Outgoing("sms.notifications", _published(db, sent), str(sent["id"]))
        )
    finally:
        await publisher.close()

    async def seen_as_duplicate() -> bool:
        return (1, "duplicate") in _attempts(db, rows["sms"]["id"])

    await eventually(seen_as_duplicate, what="the copy recognised")
    assert len(provider.requests_for(order_id[:8])) == 1


async def test_a_disabled_channel_sends_nothing_and_a_stale_event_is_suppressed(
    workers: dict[Channel, FastAPI],
    client: httpx.AsyncClient,
    shell: EventShell[Any],
    provider: ProviderDouble,
    db: psycopg.Connection[DictRow],
    user: Bearer,
) -> None:
    await _prefer(
        client,
        user,
        confirmed={"email": False, "sms": False, "push": True},
        delivered={"email": False, "sms": False, "push": True},
    )
    order_id = str(uuid.uuid4())
    topic, envelope = status_changed(ORDER_DELIVERED, order_id, user.id, 4, "DELIVERED", "SHIPPED")
    await shell.handle(topic, envelope.to_bytes())
    await _statuses(db, order_id, {"push": "sent"})
    topic, envelope = confirmed(order_id, user.id, version=1)
    await shell.handle(topic, envelope.to_bytes())
    await asyncio.sleep(1.0)
    sent = provider.requests_for(order_id)
    assert [r.body["data"]["eventType"] for r in sent] == ["order.delivered"]
    assert not provider.requests_for(order_id[:8], "/sms")


async def test_a_worker_killed_mid_message_still_delivers_once(
    workers: dict[Channel, FastAPI],
    client: httpx.AsyncClient,
    shell: EventShell[Any],
    provider: ProviderDouble,
    db: psycopg.Connection[DictRow],
    user: Bearer,
) -> None:
    runtime = workers[Channel.PUSH].state.runtime
    await _prefer(client, user, confirmed={"email": False, "sms": False, "push": True})
    order_id = str(uuid.uuid4())
    release = provider.hold(order_id)
    await _confirm(shell, user, order_id)

    async def in_flight() -> bool:
        return bool(provider.requests_for(order_id))

    await eventually(in_flight, what="the push request in flight")
    await runtime.kill("deliveries")  # mid-send: the provider has not answered
    release.set()
    runtime.start("deliveries")
    rows = await _statuses(db, order_id, {"push": "sent"})
    assert len(provider.accepted_for(order_id)) == 1
    outcomes = [outcome for _, outcome in _attempts(db, rows["push"]["id"])]
    assert outcomes == ["sent"]


async def test_a_dead_letter_whose_message_cannot_be_read_is_not_replayed(
    client: httpx.AsyncClient, db: psycopg.Connection[DictRow], admin: Bearer
) -> None:
    """The broker dead-lettered a message of a known delivery, but its body is no message: the
    replay, which sends the dead letter's message, refuses it and leaves the delivery dead."""
    delivery_id, dead_letter_id = delivery(db, notification(db), "dead"), uuid.uuid4()
    db.execute(
        "INSERT INTO dead_letters (id, delivery_id, channel, queue, reason, attempts, payload)"
        " VALUES (%s, %s, 'push', 'push.notifications', 'rejected', 1, %s)",
        (dead_letter_id, delivery_id, b"not json"),
    )
    replay = await client.post(f"/notifications/dlq/{dead_letter_id}/replay", headers=admin.headers)
    assert replay.status_code == 409, replay.text
    assert "cannot be read" in replay.json()["detail"]
    row = db.execute("SELECT status, payload FROM deliveries WHERE id = %s", (delivery_id,))
    assert row.fetchone() == {"status": "dead", "payload": None}


async def test_bad_input_to_the_dead_letter_endpoints_is_a_4xx_problem(
    client: httpx.AsyncClient, user: Bearer, admin: Bearer
) -> None:
    cases = [
        ("GET", "/notifications/dlq?status=lost", admin, 422),
        ("GET", "/notifications/dlq?channel=fax", admin, 422),
        ("GET", "/notifications/dlq?limit=0", admin, 422),
        ("GET", "/notifications/dlq?orderId=nope", admin, 422),
        ("GET", "/notifications/dlq?cursor=bogus", admin, 422),
        ("GET", "/notifications/dlq", user, 403),
        ("POST", "/notifications/dlq/not-a-uuid/replay", admin, 422),
        ("POST", f"/notifications/dlq/{uuid.uuid4()}/replay", admin, 404),
        ("POST", f"/notifications/dlq/{uuid.uuid4()}/discard", admin, 404),
        ("POST", f"/notifications/dlq/{uuid.uuid4()}/discard", user, 403),
    ]
    for method, path, caller, status in cases:
        response = await client.request(method, path, headers=caller.headers)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
