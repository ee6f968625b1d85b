"""Order events become in-app notifications, live pushes and one message per enabled channel.

Each event is applied once (a redelivery changes nothing), a stale one is suppressed, and a
delivery written while the relay is down, or while the broker cannot take it, is published
when it can be: never lost, never twice.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import httpx
import pika
import psycopg
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from devstack.testing import RedisServer
from services.kit.consumer import EventShell
from services.kit.kafka import EventProducer
from services.kit.live import NOTIFICATION_CREATED, NOTIFICATION_UNREAD, user_room
from services.kit.metrics import EVENTS_CONSUMED
from services.kit.order_events import ORDER_CONFIRMED, ORDER_CREATED, ORDER_DELIVERED
from services.kit.rabbit import declare_queues
from services.notifications import repository as repo
from services.notifications import topology
from tests.integration.consumed import as_messages
from tests.integration.notifications.support import (
    QueueReader,
    confirmed,
    created,
    set_preferences,
    status_changed,
)
from tests.integration.orders.support import LiveListener
from tests.support import Bearer, eventually

pytestmark = pytest.mark.integration

EMAIL, SMS, PUSH = "email.notifications", "sms.notifications", "push.notifications"


def _deliveries(db: psycopg.Connection[DictRow], order_id: str) -> list[dict[str, Any]]:
    return db.execute(
        """
        SELECT d.* FROM deliveries d JOIN notifications n ON n.id = d.notification_id
        WHERE n.order_id = %s ORDER BY d.channel
        """,
        (order_id,),
    ).fetchall()


async def _all_queued(db: psycopg.Connection[DictRow], order_id: str, count: int) -> bool:
    rows = _deliveries(db, order_id)
    return len(rows) == count and all(r["status"] == "queued" for r in rows)


async def test_a_confirmed_order_notifies_in_app_live_and_on_each_enabled_channel(
    client: httpx.AsyncClient,
    producer: EventProducer,
    queues: QueueReader,
    redis_server: RedisServer,
    db: psycopg.Connection[DictRow],
    user: Bearer,
) -> None:
    await set_preferences(
        client,
        user,
        {
            "channels": {"order.confirmed": {"email": True, "sms": False, "push": True}},
            "email": "ada@example.org",
            "phone": "+4930123456",
        },
    )
    order_id = str(uuid.uuid4())
    topic, envelope = confirmed(order_id, user.id)
    async with LiveListener(redis_server.url) as live:
        await producer.publish(topic, order_id, envelope.to_bytes())

        async def listed() -> dict[str, Any] | None:
            page = (await client.get("/notifications", headers=user.headers)).json()
            return page if page["items"] else None

        page = await eventually(listed, what="the in-app notification")
        assert page["unreadCount"] == 1
        (item,) = page["items"]
        assert (item["orderId"], item["eventType"], item["read"]) == (
            order_id,
            ORDER_CONFIRMED,
            False,
        )
        assert item["title"] == "Order confirmed"

        async def pushed() -> bool:
            return any(u["event"] == NOTIFICATION_CREATED for u in live.for_order(order_id))

        await eventually(pushed, what="the live push")
        (pushed_item,) = [u for u in live.for_order(order_id) if u["event"] == NOTIFICATION_CREATED]
        assert pushed_item["room"] == user_room(user.id)
        assert pushed_item["id"] == item["id"]
        assert pushed_item["unreadCount"] == 1, "the count rides on the notification's push"
        assert not [u for u in live.updates if u["event"] == NOTIFICATION_UNREAD], "one push"

    await eventually(lambda: _all_queued(db, order_id, 2), what="both deliveries queued")

    async def on_queues() -> bool:
        await queues.collect()
        return bool(queues.for_order(order_id, EMAIL)) and bool(queues.for_order(order_id, PUSH))

    await eventually(on_queues, what="the email and push messages")
    assert queues.for_order(order_id, SMS) == []
    deliveries = {row["channel"]: row for row in _deliveries(db, order_id)}
    assert set(deliveries) == {"email", "push"}
    (email,) = queues.for_order(order_id, EMAIL)
    (push,) = queues.for_order(order_id, PUSH)
    assert email.message_id == email.body["deliveryId"] == str(deliveries["email"]["id"])
    assert push.message_id == push.body["deliveryId"] == str(deliveries["push"]["id"])
    assert email.body["recipient"] == "ada@example.org"
    assert push.body["recipient"] == user.id
    assert email.body["schemaVersion"] == 1
    assert email.body["notificationId"] == item["id"]
    assert {uuid.UUID(i).version for i in (item["id"], email.message_id, push.message_id)} == {7}
    assert email.body["eventId"] == envelope.id
    assert email.body["data"]["status"] == "CONFIRMED"
    # The notification, its deliveries and their messages are one statement's rows, made at once.
    made = datetime.fromisoformat(item["createdAt"])
    assert {datetime.fromisoformat(m.body["createdAt"]) for m in (email, push)} == {made}
    assert {row["created_at"] for row in deliveries.values()} == {made}
    # Quorum queues add their own x-delivery-count.
    assert {k: v for k, v in email.headers.items() if not k.startswith("x-")} == {
        "schema-version": "1",
        "channel": "email",
        "event-type": ORDER_CONFIRMED,
    }


async def test_a_redelivered_event_changes_nothing(
    shell: EventShell[Any],
    queues: QueueReader,
    db: psycopg.Connection[DictRow],
    user: Bearer,
) -> None:
    order_id = str(uuid.uuid4())
    topic, envelope = created(order_id, user.id)
    applied = await shell.handle(topic, envelope.to_bytes())
    assert applied is not None
    assert applied.outcome == "notified"
    # Its order version is notified already: the version rule turns it away.
    again = await shell.handle(topic, envelope.to_bytes())
    assert again is not None
    assert again.outcome == "stale"
    assert db.execute(
        "SELECT count(*) AS n FROM processed_events WHERE event_id = %s", (envelope.id,)
    ).fetchone() == {"n": 0}, "nothing claimed: the order's version is the record"

    assert db.execute(
        "SELECT count(*) AS n FROM notifications WHERE order_id = %s", (order_id,)
    ).fetchone() == {"n": 1}
    # No preferences saved: email has no address (skipped), push goes to the user.
    await eventually(lambda: _deliveries_settled(db, order_id), what="the push delivery queued")
    statuses = {row["channel"]: row["status"] for row in _deliveries(db, order_id)}
    assert statuses == {"email": "skipped", "push": "queued"}

    async def pushed() -> bool:
        await queues.collect()
        return bool(queues.for_order(order_id, PUSH))

    await eventually(pushed, what="the push message")
    assert len(queues.for_order(order_id)) == 1


async def test_preferences_saved_elsewhere_are_the_ones_an_event_is_sent_with(
    shell: EventShell[Any], db: psycopg.Connection[DictRow], user: Bearer
) -> None:
    """The consumer keeps the preferences it read, and the statement that records a
    notification checks them against the stored row: preferences saved by another replica,
    which this process never saw, are read again before anything is sent."""

    async def notify() -> dict[str, tuple[str, str | None]]:
        order_id = str(uuid.uuid4())
        topic, envelope = created(order_id, user.id)
        applied = await shell.handle(topic, envelope.to_bytes())
        assert applied is not None
        assert applied.outcome == "notified"
        return {
            row["channel"]: (row["status"], row["recipient"]) for row in _deliveries(db, order_id)
        }

    # Never saved: the defaults, and no email address.
    assert await notify() == {"email": ("skipped", None), "push": ("pending", user.id)}
    db.execute(
        "INSERT INTO preferences (user_id, channels, email, phone) VALUES (%s, %s, %s, %s)",
        (
            user.id,
            Jsonb({ORDER_CREATED: {"email": True, "sms": True, "push": False}}),
            "ada@example.org",
            "+4930123456",
        ),
    )
    sent = await notify()
    assert {channel: recipient for channel, (_, recipient) in sent.items()} == {
        "email": "ada@example.org",
        "sms": "+4930123456",
    }
    db.execute(
        "UPDATE preferences SET email = 'grace@example.org', updated_at = now() WHERE user_id = %s",
        (user.id,),
    )
    assert (await notify())["email"][1] == "grace@example.org"
    assert (await notify())["email"][1] == "grace@example.org", "the new ones, kept"


async def _deliveries_settled(db: psycopg.Connection[DictRow], order_id: str) -> bool:
    rows = _deliveries(db, order_id)
    return bool(rows) and all(r["status"] != "pending" for r in rows)


async def test_a_stale_event_is_suppressed(
    client: httpx.AsyncClient,
    shell: EventShell[Any],
    db: psycopg.Connection[DictRow],
    user: Bearer,
    admin: Bearer,
) -> None:
    order_id = str(uuid.uuid4())
    topic, delivered = status_changed(ORDER_DELIVERED, order_id, user.id, 4, "DELIVERED", "SHIPPED")
    applied = await shell.handle(topic, delivered.to_bytes())
    assert applied is not None
    assert applied.outcome == "notified"
    topic, late = confirmed(order_id, user.id, version=1)
    applied = await shell.handle(topic, late.to_bytes())
    assert applied is not None
    assert applied.outcome == "stale"
    topic, same = status_changed(ORDER_DELIVERED, order_id, user.id, 4, "DELIVERED", "SHIPPED")
    applied = await shell.handle(topic, same.to_bytes())
    assert applied is not None
    assert applied.outcome == "stale"

    trail = await client.get(f"/notifications/orders/{order_id}", headers=admin.headers)
    assert trail.status_code == 200
    body = trail.json()
    assert body["notifiedVersion"] == 4
    assert [n["eventType"] for n in body["notifications"]] == [ORDER_DELIVERED]
    assert {d["channel"] for d in body["notifications"][0]["deliveries"]} == {"email", "push"}


async def test_deliveries_written_while_the_relay_is_down_are_published_when_it_is_back(
    notifications_app: FastAPI,
    shell: EventShell[Any],
    queues: QueueReader,
    db: psycopg.Connection[DictRow],
    user: Bearer,
    client: httpx.AsyncClient,
) -> None:
    await set_preferences(client, user, {"email": "ada@example.org"})
    runtime = notifications_app.state.runtime
    await runtime.kill("delivery-relay")
    try:
        order_id = str(uuid.uuid4())
        topic, envelope = confirmed(order_id, user.id)
        await shell.handle(topic, envelope.to_bytes())
        assert {r["status"] for r in _deliveries(db, order_id)} == {"pending"}
        await queues.collect()
        assert queues.for_order(order_id) == []
    finally:
        runtime.start("delivery-relay")
    await eventually(lambda: _all_queued(db, order_id, 2), what="the deliveries queued")

    async def published() -> bool:
        await queues.collect()
        return len(queues.for_order(order_id)) == 2

    await eventually(published, what="both messages")
    assert sorted(r.queue for r in queues.for_order(order_id)) == [EMAIL, PUSH]


async def test_a_message_the_broker_cannot_route_stays_pending_until_it_can(
    shell: EventShell[Any],
    queues: QueueReader,
    db: psycopg.Connection[DictRow],
    user: Bearer,
    client: httpx.AsyncClient,
    vhost_url: str,
) -> None:
    await set_preferences(client, user, {"email": "ada@example.org"})
    await asyncio.to_thread(_delete_queue, vhost_url, EMAIL)
    before = _publish_failures()
    try:
        order_id = str(uuid.uuid4())
        topic, envelope = confirmed(order_id, user.id)
        await shell.handle(topic, envelope.to_bytes())

        async def refused() -> bool:
            return _publish_failures() > before

        await eventually(refused, what="the relay to meet the unroutable message")
        statuses = {r["channel"]: r["status"] for r in _deliveries(db, order_id)}
        assert statuses["email"] == "pending"
    finally:
        await declare_queues(vhost_url, topology.queues())
    await eventually(lambda: _all_queued(db, order_id, 2), what="the deliveries queued")

    async def published() -> bool:
        await queues.collect()
        return len(queues.for_order(order_id)) == 2

    await eventually(published, what="both messages")
    assert sorted(r.queue for r in queues.for_order(order_id)) == [EMAIL, PUSH]


def _publish_failures() -> float:
    value = REGISTRY.get_sample_value(
        "rabbitmq_publish_failures_total", {"service": "notifications"}
    )
    return value or 0.0


def _delete_queue(url: str, queue: str) -> None:
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        connection.channel().queue_delete(queue)


async def test_a_group_is_recorded_turn_by_turn_with_the_preferences_saved_meanwhile(
    shell: EventShell[Any], db: psycopg.Connection[DictRow], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group the consumer fetched together: one statement per turn (each order's first
    event, then its second, ...), and the events of a user whose preferences were saved
    elsewhere made again with those before their orders' later events."""
    ada, grace = str(uuid.uuid4()), str(uuid.uuid4())
    first, second, late = (str(uuid.uuid4()) for _ in range(3))
    # This process learns grace's preferences (none saved) and notifies `late` at version 4.
    topic, delivered = status_changed(ORDER_DELIVERED, late, grace, 4, "DELIVERED", "SHIPPED")
    assert await shell.handle(topic, delivered.to_bytes()) is not None
    db.execute(
        "INSERT INTO preferences (user_id, channels, email, phone) VALUES (%s, %s, %s, NULL)",
        (grace, Jsonb({}), "grace@example.org"),
    )
    statements = _statements_counted(monkeypatch)
    creation = created(first, ada)
    group = [
        creation,
        created(second, grace),
        confirmed(first, ada),
        confirmed(late, grace),  # version 2 after 4: stale
        confirmed(second, grace),
        creation,  # a copy: stale
    ]
    processed = _consumed(ORDER_CREATED)

    await shell.apply_group(as_messages(*group))

    # Turns: [first, second, late], grace's two again, [first, second]; the copy, after the
    # creation it repeats, is stale without a statement.
    assert statements == [3, 2, 2]
    rows = db.execute(
        """
        SELECT n.order_id::text, n.event_type, n.order_version,
               array_agg(d.channel || ':' || coalesce(d.recipient, d.status) ORDER BY d.channel)
                   AS deliveries
        FROM notifications n JOIN deliveries d ON d.notification_id = n.id
        WHERE n.order_id = ANY(%s::uuid[])
        GROUP BY n.id ORDER BY n.order_id, n.order_version
        """,
        ([first, second, late],),
    ).fetchall()
    found = {(r["order_id"], r["event_type"], r["order_version"]): r["deliveries"] for r in rows}
    assert found == {
        (first, ORDER_CREATED, 1): ["email:skipped", f"push:{ada}"],
        (first, ORDER_CONFIRMED, 2): ["email:skipped", f"push:{ada}"],
        (second, ORDER_CREATED, 1): ["email:grace@example.org", f"push:{grace}"],
        (second, ORDER_CONFIRMED, 2): ["email:grace@example.org", f"push:{grace}"],
        (late, ORDER_DELIVERED, 4): ["email:skipped", f"push:{grace}"],
    }
    versions = db.execute(
        "SELECT order_id::text, version FROM order_versions WHERE order_id = ANY(%s::uuid[])",
        ([first, second, late],),
    ).fetchall()
    assert {r["order_id"]: r["version"] for r in versions} == {first: 2, second: 2, late: 4}
    assert _consumed(ORDER_CREATED) == processed + 3, "the copy too: stale is its outcome"


async def test_a_confirmation_fetched_before_its_creation_still_follows_it(
    shell: EventShell[Any], db: psycopg.Connection[DictRow], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An order's creation and confirmation come from two topics, and a fetch may hand over the
    confirmation first: the creation is recorded first all the same, so the customer is told
    both, in order, and a copy of the creation in the group is stale without a statement."""
    ada, order = str(uuid.uuid4()), str(uuid.uuid4())
    statements = _statements_counted(monkeypatch)
    stale = _stale(ORDER_CREATED)
    creation = created(order, ada)

    await shell.apply_group(as_messages(confirmed(order, ada), creation, creation))

    assert statements == [1, 1]
    rows = db.execute(
        "SELECT event_type FROM notifications WHERE order_id = %s::uuid ORDER BY order_version",
        (order,),
    ).fetchall()
    assert [r["event_type"] for r in rows] == [ORDER_CREATED, ORDER_CONFIRMED]
    assert _stale(ORDER_CREATED) == stale + 1, "the copy"


def _statements_counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The events of each notifications statement from now on, in a list that grows."""
    statements: list[int] = []
    record = repo.record_notifications

    async def counted(conn: Any, events: Any) -> Any:
        statements.append(len(events))
        return await record(conn, events)

    monkeypatch.setattr(repo, "record_notifications", counted)
    return statements


def _stale(event_type: str) -> float:
    value = REGISTRY.get_sample_value(
        "notifications_events_total", {"event_type": event_type, "outcome": "stale"}
    )
    return value or 0.0


def _consumed(topic: str) -> float:
    value: float = EVENTS_CONSUMED.labels("notifications", topic, "processed")._value.get()
    return value


async def test_the_pushes_of_a_group_read_every_users_unread_count_in_one_statement(
    shell: EventShell[Any], redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada, grace = str(uuid.uuid4()), str(uuid.uuid4())
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    reads: list[list[str]] = []
    unread_counts = repo.unread_counts

    async def counted(conn: Any, user_ids: Any) -> dict[str, int]:
        reads.append(list(user_ids))
        return await unread_counts(conn, user_ids)

    monkeypatch.setattr(repo, "unread_counts", counted)
    async with LiveListener(redis_server.url) as live:
        await shell.apply_group(
            as_messages(created(first, ada), created(second, grace), confirmed(first, ada))
        )
        await shell.after_commit.drained()

        async def pushed() -> list[dict[str, Any]] | None:
            found = [
                u
                for u in live.updates
                if u["event"] == NOTIFICATION_CREATED and u["orderId"] in (first, second)
            ]
            return found if len(found) == 3 else None

        pushes = await eventually(pushed, what="the group's three pushes")

    assert reads == [[ada, grace]]
    assert [(p["orderId"], p["eventType"], p["unreadCount"]) for p in pushes] == [
        (first, ORDER_CREATED, 2),
        (second, ORDER_CREATED, 1),
        (first, ORDER_CONFIRMED, 2),
    ]
    assert [p["room"] for p in pushes] == [user_room(ada), user_room(grace), user_room(ada)]
