"""The projection and the reports: exact counts from consumed events, once each, in any order."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from services.kit.consumer import EventShell
from services.kit.kafka import EventProducer
from services.kit.order_events import ORDER_CANCELLED, ORDER_DELIVERED, ORDER_SHIPPED
from tests.integration.analytics.support import (
    Event,
    confirmed,
    created,
    expired,
    failed,
    status_changed,
)
from tests.integration.consumed import as_messages
from tests.support import Bearer, eventually


def _day(offset: int) -> date:
    """A day of its own for one test (the module's tests share one database)."""
    return date(2026, 3, 1) + timedelta(days=offset)


def _at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


async def _produce(producer: EventProducer, *events: Event) -> None:
    for topic, envelope in events:
        await producer.publish(topic, envelope.subject, envelope.to_bytes())


async def _apply(shell: EventShell[Any], *events: Event) -> list[str | None]:
    outcomes = []
    for topic, envelope in events:
        applied = await shell.handle(topic, envelope.to_bytes())
        outcomes.append(applied.outcome if applied else None)
    return outcomes


async def _get(client: httpx.AsyncClient, admin: Bearer, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=admin.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_orders_consumed_from_kafka_are_counted_exactly(
    client: httpx.AsyncClient, producer: EventProducer, admin: Bearer
) -> None:
    day = _day(0)
    user = str(uuid.uuid4())
    orders = [str(uuid.uuid4()) for _ in range(4)]
    await _produce(
        producer,
        created(orders[0], user, _at(day, 9), "10.00"),
        created(orders[1], user, _at(day, 10), "25.50"),
        created(orders[2], user, _at(day + timedelta(days=1)), "7.25"),
        created(orders[3], user, _at(day + timedelta(days=1)), "99.00", currency="USD"),
        confirmed(orders[0], user),
        confirmed(orders[1], user),
        failed(orders[2], user),
        confirmed(orders[3], user),
        status_changed(ORDER_CANCELLED, orders[1], user, 3, "CANCELLED", "CONFIRMED"),
    )
    period = {"from": day.isoformat(), "to": (day + timedelta(days=2)).isoformat()}

    async def settled() -> Any:
        body = await _get(client, admin, "/analytics/status-distribution", **period)
        counts = {s["status"]: s["orders"] for s in body["statuses"]}
        done = body["total"] == 4 and counts["CREATED"] == 0 and counts["CANCELLED"] == 1
        return body if done else None

    distribution = await eventually(settled, within=30, what="the four orders projected")
    counts = {s["status"]: s["orders"] for s in distribution["statuses"]}
    assert counts == {
        "CREATED": 0,
        "CONFIRMED": 2,
        "FAILED": 1,
        "SHIPPED": 0,
        "DELIVERED": 0,
        "CANCELLED": 1,
    }
    assert distribution["source"] == "projection"

    per_day = await _get(client, admin, "/analytics/orders-per-day", **period)
    assert [
        (p["period"], p["orders"], p["confirmed"], p["failed"], p["cancelled"])
        for p in per_day["points"]
    ] == [
        (day.isoformat(), 2, 1, 0, 1),
        ((day + timedelta(days=1)).isoformat(), 2, 1, 1, 0),
        ((day + timedelta(days=2)).isoformat(), 0, 0, 0, 0),
    ]
    assert per_day["total"] == 4
    assert (per_day["from"], per_day["to"], per_day["granularity"]) == (
        period["from"],
        period["to"],
        "day",
    )

    revenue = await _get(client, admin, "/analytics/revenue", **period)
    by_currency = {c["currency"]: c for c in revenue["currencies"]}
    # The cancelled and the failed orders are no revenue; currencies are never summed.
    assert by_currency["EUR"]["total"] == "10.00"
    assert by_currency["EUR"]["orders"] == 1
    assert by_currency["USD"]["total"] == "99.00"
    assert [p["revenue"] for p in by_currency["EUR"]["points"]] == ["10.00", "0.00", "0.00"]

    weekly = await _get(client, admin, "/analytics/orders-per-day", granularity="week", **period)
    monday = day - timedelta(days=day.weekday())
    assert weekly["points"][0]["period"] == monday.isoformat()
    assert sum(p["orders"] for p in weekly["points"]) == 4


async def test_events_in_any_order_end_at_the_newest_version(
    client: httpx.AsyncClient, shell: EventShell[Any], admin: Bearer
) -> None:
    day = _day(10)
    user = str(uuid.uuid4())
    early, late = str(uuid.uuid4()), str(uuid.uuid4())
    outcomes = await _apply(
        shell,
        # The confirmation before the creation it answers (they travel on different topics).
        confirmed(early, user),
        created(early, user, _at(day), "40.00"),
        # Delivered before shipped: the late shipped event is stale.
        created(late, user, _at(day), "5.00"),
        status_changed(ORDER_DELIVERED, late, user, 4, "DELIVERED", "SHIPPED"),
        status_changed(ORDER_SHIPPED, late, user, 3, "SHIPPED", "CONFIRMED"),
        confirmed(late, user),
    )
    assert outcomes == ["projected"] * 6
    period = {"from": day.isoformat(), "to": day.isoformat()}
    distribution = await _get(client, admin, "/analytics/status-distribution", **period)
    counts = {s["status"]: s["orders"] for s in distribution["statuses"] if s["orders"]}
    assert counts == {"CONFIRMED": 1, "DELIVERED": 1}
    revenue = await _get(client, admin, "/analytics/revenue", **period)
    assert [(c["currency"], c["total"]) for c in revenue["currencies"]] == [("EUR", "45.00")]


async def test_an_event_applied_twice_counts_once(
    client: httpx.AsyncClient, shell: EventShell[Any], admin: Bearer
) -> None:
    day = _day(20)
    user, order = str(uuid.uuid4()), str(uuid.uuid4())
    creation = created(order, user, _at(day), "12.00")
    assert await _apply(shell, creation, confirmed(order, user)) == ["projected", "projected"]
    assert await _apply(shell, creation) == [None]  # the event log's dedupe

    period = {"from": day.isoformat(), "to": day.isoformat()}
    per_day = await _get(client, admin, "/analytics/orders-per-day", **period)
    assert per_day["total"] == 1


async def test_the_projection_claims_nothing_and_keeps_each_event_once(
    client: httpx.AsyncClient, shell: EventShell[Any], admin: Bearer
) -> None:
    day = _day(21)
    user, order = str(uuid.uuid4()), str(uuid.uuid4())
    creation, expiry = created(order, user, _at(day), "12.00"), expired(order, user)
    assert await _apply(shell, creation, expiry) == ["projected", "projected"]
    async with shell.pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*) AS n FROM processed_events WHERE event_id = ANY(%s::uuid[])",
            ([creation[1].id, expiry[1].id],),
        )
        assert await cursor.fetchone() == {"n": 0}, "the event log is the record"

    assert await _apply(shell, creation, expiry) == [None, None]
    period = {"from": day.isoformat(), "to": day.isoformat()}
    per_day = await _get(client, admin, "/analytics/orders-per-day", **period)
    assert per_day["total"] == 1
    logged = await _get(client, admin, "/analytics/events", orderId=order)
    assert sorted(e["type"] for e in logged["items"]) == sorted([creation[1].type, expiry[1].type])


async def test_reports_answer_from_the_projection_when_prometheus_is_down(
    client: httpx.AsyncClient, shell: EventShell[Any], admin: Bearer
) -> None:
    day = _day(30)
    user, order = str(uuid.uuid4()), str(uuid.uuid4())
    await _apply(shell, created(order, user, _at(day), "3.00"), confirmed(order, user))
    period = {"from": day.isoformat(), "to": day.isoformat()}
    for path in (
        "/analytics/dashboard",
        "/analytics/orders-per-day",
        "/analytics/revenue",
        "/analytics/status-distribution",
    ):
        body = await _get(client, admin, path, **period)
        assert body["sources"]["projection"]["available"] is True
        assert body["sources"]["prometheus"]["available"] is False
        assert "Prometheus did not answer" in body["sources"]["prometheus"]["detail"]
        assert all(
            f["value"] is None and f["source"] == "prometheus" for f in body["live"].values()
        )
    dashboard = await _get(client, admin, "/analytics/dashboard", **period)
    assert dashboard["figures"]["orders"] == {"value": 1, "unit": "orders", "source": "projection"}
    assert dashboard["figures"]["confirmedOrders"]["value"] == 1
    assert dashboard["figures"]["ordersPerMinute"]["source"] == "prometheus"
    assert [(r["currency"], r["total"]) for r in dashboard["revenue"]] == [("EUR", "3.00")]


async def test_the_event_log_filters_and_pages(
    client: httpx.AsyncClient, shell: EventShell[Any], admin: Bearer
) -> None:
    user, order = str(uuid.uuid4()), str(uuid.uuid4())
    events = [
        created(order, user, _at(_day(40))),
        confirmed(order, user),
        status_changed(ORDER_SHIPPED, order, user, 3, "SHIPPED", "CONFIRMED"),
        status_changed(ORDER_DELIVERED, order, user, 4, "DELIVERED", "SHIPPED"),
    ]
    await _apply(shell, *events)

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"orderId": order, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = await _get(client, admin, "/analytics/events", **params)
        seen += [item["eventId"] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(envelope.id for _, envelope in events)
    assert len(seen) == len(set(seen))

    shipped = await _get(client, admin, "/analytics/events", orderId=order, type="order.shipped")
    assert [(i["type"], i["version"], i["data"]["status"]) for i in shipped["items"]] == [
        ("order.shipped", 3, "SHIPPED")
    ]
    both = await client.get(
        "/analytics/events",
        params=[("orderId", order), ("type", "order.created"), ("type", "order.confirmed")],
        headers=admin.headers,
    )
    assert sorted(i["type"] for i in both.json()["items"]) == ["order.confirmed", "order.created"]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    later = await _get(client, admin, "/analytics/events", orderId=order, **{"from": future})
    assert later["items"] == []


def _stories(day: date) -> tuple[list[Event], dict[str, dict[str, Any]]]:
    """The events of four orders (confirmed and delivered, failed, cancelled, confirmed and
    expired), one of them twice, and the row each order ends with."""
    user = str(uuid.uuid4())
    delivered, failing, cancelled, lapsed = (str(uuid.uuid4()) for _ in range(4))
    events = [
        created(delivered, user, _at(day, 8), "40.00"),
        confirmed(delivered, user),
        status_changed(ORDER_SHIPPED, delivered, user, 3, "SHIPPED", "CONFIRMED"),
        status_changed(ORDER_DELIVERED, delivered, user, 4, "DELIVERED", "SHIPPED"),
        created(failing, user, _at(day, 9), "15.00", currency="USD"),
        failed(failing, user),
        created(cancelled, user, _at(day, 10), "7.50"),
        confirmed(cancelled, user),
        status_changed(ORDER_CANCELLED, cancelled, user, 3, "CANCELLED", "CONFIRMED"),
        created(lapsed, user, _at(day, 11), "3.00"),
        confirmed(lapsed, user),
        expired(lapsed, user),
    ]

    def row(
        status: str, version: int, total: str, currency: str, hour: int, confirmation: int | None
    ) -> dict[str, Any]:
        return {
            "status": status,
            "version": version,
            "total": Decimal(total),
            "currency": currency,
            "item_count": 2,
            "created_at": _at(day, hour),
            "confirmed_at": None if confirmation is None else events[confirmation][1].time,
        }

    rows = {
        delivered: row("DELIVERED", 4, "40.00", "EUR", 8, 1) | {"logged": 4},
        failing: row("FAILED", 2, "15.00", "USD", 9, None) | {"logged": 2},
        cancelled: row("CANCELLED", 3, "7.50", "EUR", 10, 7) | {"logged": 3},
        lapsed: row("CONFIRMED", 2, "3.00", "EUR", 11, 10) | {"logged": 3},
    }
    return [*events, events[1]], rows


def _renamed(events: list[Event]) -> tuple[list[Event], dict[str, str]]:
    """The same events for other orders and with other event ids (a copy stays a copy), and
    each order's other id."""
    orders: dict[str, str] = {}
    ids: dict[str, str] = {}
    renamed = []
    for topic, envelope in events:
        order = orders.setdefault(envelope.subject, str(uuid.uuid4()))
        data = envelope.data.model_copy(update={"order_id": order})
        update = {"id": ids.setdefault(envelope.id, str(uuid.uuid4())), "subject": order}
        renamed.append((topic, envelope.model_copy(update={**update, "data": data})))
    return renamed, orders


async def _facts(shell: EventShell[Any], orders: list[str]) -> dict[str, dict[str, Any]]:
    """Each order's row, and how many of its events the log keeps."""
    async with shell.pool.connection() as conn:
        cursor = await conn.execute(
            """
            SELECT f.order_id, f.status, f.version, f.total, f.currency, f.item_count,
                   f.created_at, f.confirmed_at,
                   (SELECT count(*) FROM event_log l WHERE l.order_id = f.order_id) AS logged
            FROM order_facts f
            WHERE f.order_id = ANY(%s)
            """,
            (orders,),
        )
        return {row.pop("order_id"): row for row in await cursor.fetchall()}


async def test_events_in_one_statement_end_where_they_end_one_by_one(
    shell: EventShell[Any],
) -> None:
    for seed in range(8):
        one_by_one, expected = _stories(_day(50 + seed))
        random.Random(seed).shuffle(one_by_one)
        grouped, other_id = _renamed(one_by_one)

        await _apply(shell, *one_by_one)
        cuts = [0, 1 + seed % 3, 6, 7 + seed % 5, len(grouped)]
        for start, end in itertools.pairwise(cuts):
            await shell.apply_group(as_messages(*grouped[start:end], first_offset=start))

        assert await _facts(shell, list(expected)) == expected, f"one by one, seed {seed}"
        in_groups = {other_id[order]: row for order, row in expected.items()}
        assert await _facts(shell, list(in_groups)) == in_groups, f"in groups, seed {seed}"
