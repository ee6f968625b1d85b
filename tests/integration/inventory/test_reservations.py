"""Reservations over a real Kafka broker: order.created in, order.confirmed / order.failed out,
all lines or none, never more than the stock, each message's effect exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from confluent_kafka import Message
from fastapi import FastAPI

from services.inventory import repository as repo
from services.inventory.domain import RequestedLine
from services.inventory.handlers import EVENT_HANDLERS
from services.inventory.service import InventoryService
from services.inventory.settings import Settings
from services.kit.changes import PRODUCT_CHANGES
from services.kit.consumer import EventShell
from services.kit.db import DictConnection, connect
from services.kit.events import Envelope, parse_envelope
from services.kit.kafka import BatchConsumer, EventProducer, dead_letter_topic
from services.kit.order_events import (
    ORDER_CONFIRMED,
    ORDER_CREATED,
    ORDER_FAILED,
    OrderConfirmed,
    OrderFailed,
)
from services.kit.outbox import OutboxRow
from tests.integration.consumed import as_messages
from tests.integration.inventory.support import (
    Received,
    TopicReader,
    apply_event,
    create_product,
    order_created,
    status_changed,
    stock_levels,
)
from tests.support import Bearer, eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def publish(
    producer: EventProducer, topic: str, envelope: Envelope[Any], key: str = ""
) -> None:
    await producer.publish(topic, key or envelope.subject, envelope.to_bytes())


async def answer(reader: TopicReader, order_id: str) -> Received:
    """Inventory's one answer to an order (confirmed or failed)."""

    async def answered() -> list[Received]:
        return [r for r in reader.received(order_id) if r.topic in (ORDER_CONFIRMED, ORDER_FAILED)]

    found = await eventually(answered, what=f"an answer to order {order_id}")
    return found[0]


async def answers(reader: TopicReader, order_id: str) -> list[Received]:
    return [r for r in reader.received(order_id) if r.topic in (ORDER_CONFIRMED, ORDER_FAILED)]


def created_messages(group: Sequence[Envelope[Any]]) -> list[Message]:
    """The order.created events of `group` as one fetch's messages, in their order."""
    return as_messages(*((ORDER_CREATED, created) for created in group))


def claimed(db: Any, *events: Envelope[Any]) -> list[str]:
    """The ids of `events` claimed in `processed_events`, sorted."""
    rows = db.execute(
        "SELECT event_id::text AS id FROM processed_events WHERE event_id = ANY(%s::uuid[])",
        ([e.id for e in events],),
    ).fetchall()
    return sorted(row["id"] for row in rows)


def reservation(db: Any, order_id: str) -> dict[str, Any] | None:
    row: dict[str, Any] | None = db.execute(
        "SELECT * FROM reservations WHERE order_id = %s", (order_id,)
    ).fetchone()
    return row


async def test_an_order_in_stock_is_confirmed_and_reserved(
    client: httpx.AsyncClient,
    admin: Bearer,
    producer: EventProducer,
    reader: TopicReader,
    db: Any,
) -> None:
    product = await create_product(client, admin, stock=5)
    created = order_created([(product["id"], 2)], user_id="ada")
    await publish(producer, ORDER_CREATED, created)

    received = await answer(reader, created.subject)
    assert received.topic == ORDER_CONFIRMED
    confirmed = parse_envelope(received.value, OrderConfirmed)
    assert confirmed.source == "/inventory"
    assert confirmed.subject == created.subject
    assert (confirmed.data.order_id, confirmed.data.user_id, confirmed.data.version) == (
        created.subject,
        "ada",
        1,
    )
    expires_in = confirmed.data.reservation_expires_at - datetime.now(UTC)
    assert timedelta(seconds=880) < expires_in <= timedelta(seconds=900)
    assert await stock_levels(client, product["id"]) == (5, 2, 3)
    row = reservation(db, created.subject)
    assert row is not None
    assert row["status"] == "RESERVED"
    assert row["expires_at"] == confirmed.data.reservation_expires_at


async def test_a_group_of_reservations_makes_the_product_list_stale_once(
    client: httpx.AsyncClient,
    admin: Bearer,
    inventory_app: FastAPI,
    shell: EventShell[InventoryService],
) -> None:
    product = await create_product(client, admin, stock=10)
    redis = inventory_app.state.inventory.cache.redis
    await shell.after_commit.drained()
    before = await PRODUCT_CHANGES.generation(redis)
    group = [order_created([(product["id"], 1)]) for _ in range(4)]

    await shell.apply_group(created_messages(group))
    await shell.after_commit.drained()

    assert await stock_levels(client, product["id"]) == (10, 4, 6)
    # Within PRODUCT_STOCK_MARK_SECONDS of the product's creation: marked when it has passed.
    await eventually(lambda: generation_reached(redis, before + 1), what="the group's mark")
    assert await apply_event(shell, ORDER_CREATED, order_created([(product["id"], 1)])) == (
        "confirmed"
    )
    await eventually(lambda: generation_reached(redis, before + 2), what="the lone one's mark")
    await asyncio.sleep(0.4)
    assert await PRODUCT_CHANGES.generation(redis) == before + 2, "one mark each, no more"


async def generation_reached(redis: Any, wanted: int) -> bool:
    return await PRODUCT_CHANGES.generation(redis) >= wanted


def statuses(db: Any, *events: Envelope[Any]) -> list[str | None]:
    """The reservation status recorded for each order of `events`, in their order."""
    return [(reservation(db, e.subject) or {}).get("status") for e in events]


def announced(db: Any, *events: Envelope[Any]) -> list[list[str]]:
    """The topics of the outbox rows written for each order of `events`, in their order."""
    return [
        [
            row["topic"]
            for row in db.execute(
                "SELECT topic FROM outbox WHERE message_key = %s ORDER BY id", (e.subject,)
            ).fetchall()
        ]
        for e in events
    ]


async def test_a_group_is_reserved_in_one_statement_and_its_leftovers_on_the_checked_path(
    client: httpx.AsyncClient,
    admin: Bearer,
    shell: EventShell[InventoryService],
    db: Any,
) -> None:
    product = await create_product(client, admin, stock=10)
    first = order_created([(product["id"], 2)])
    malformed = order_created([("not-a-product-id", 1)])
    last = order_created([(product["id"], 3), (product["id"], 1)])

    await shell.apply_group(
        as_messages(
            (ORDER_CREATED, first),
            (ORDER_CREATED, first),  # a copy in the same group
            (ORDER_CREATED, malformed),
            (ORDER_CREATED, last),
        )
    )
    await shell.after_commit.drained()

    assert statuses(db, first, malformed, last) == ["RESERVED", "REFUSED", "RESERVED"]
    assert await stock_levels(client, product["id"]) == (10, 6, 4)
    assert announced(db, first, malformed, last) == [
        [ORDER_CONFIRMED],
        [ORDER_FAILED],
        [ORDER_CONFIRMED],
    ]
    # The orders that fit were reserved together, claiming nothing; the copy and the
    # malformed order took the checked path, which claims their events.
    assert claimed(db, first, malformed, last) == sorted([first.id, malformed.id])
    lines = db.execute(
        "SELECT quantity FROM reservation_lines WHERE order_id = %s", (last.subject,)
    ).fetchall()
    assert [row["quantity"] for row in lines] == [4], "one line per product"


async def test_a_group_the_units_do_not_cover_is_reserved_order_by_order_first_come_first(
    client: httpx.AsyncClient,
    admin: Bearer,
    shell: EventShell[InventoryService],
    db: Any,
) -> None:
    product = await create_product(client, admin, stock=3)
    group = [order_created([(product["id"], quantity)]) for quantity in (2, 2, 1)]

    await shell.apply_group(created_messages(group))
    await shell.after_commit.drained()

    assert statuses(db, *group) == ["RESERVED", "REFUSED", "RESERVED"]
    assert await stock_levels(client, product["id"]) == (3, 3, 0)
    assert announced(db, *group) == [[ORDER_CONFIRMED], [ORDER_FAILED], [ORDER_CONFIRMED]]


def _watch_reservations(
    monkeypatch: pytest.MonkeyPatch,
    watch: Callable[[DictConnection, Sequence[repo.NewReservation]], None],
) -> None:
    """Call `watch` with each `reserve_all_if_available` call's arguments before it runs."""
    reserve = repo.reserve_all_if_available

    async def watched(conn: DictConnection, orders: Sequence[repo.NewReservation]) -> set[str]:
        watch(conn, orders)
        return await reserve(conn, orders)

    monkeypatch.setattr(repo, "reserve_all_if_available", watched)


async def test_a_group_that_fits_is_its_one_statement_outside_a_transaction(
    client: httpx.AsyncClient,
    admin: Bearer,
    shell: EventShell[InventoryService],
    db: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    product = await create_product(client, admin, stock=5)
    group = [order_created([(product["id"], quantity)]) for quantity in (1, 2)]
    seen: list[tuple[bool, str]] = []
    _watch_reservations(
        monkeypatch,
        lambda conn, _: seen.append((conn.autocommit, conn.info.transaction_status.name)),
    )
    await shell.apply_group(created_messages(group))
    await shell.after_commit.drained()

    assert seen == [(True, "IDLE")], "one statement, committing by itself"
    assert statuses(db, *group) == ["RESERVED", "RESERVED"]
    assert await stock_levels(client, product["id"]) == (5, 3, 2)
    assert announced(db, *group) == [[ORDER_CONFIRMED], [ORDER_CONFIRMED]]


async def test_what_a_short_group_leaves_commits_together_or_not_at_all(
    client: httpx.AsyncClient,
    admin: Bearer,
    shell: EventShell[InventoryService],
    db: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    product = await create_product(client, admin, stock=3)
    group = [order_created([(product["id"], quantity)]) for quantity in (2, 2, 1)]
    calls: list[str] = []

    def failing_on_the_last(conn: DictConnection, orders: Sequence[repo.NewReservation]) -> None:
        calls.append(conn.info.transaction_status.name)
        if [o.order_id for o in orders] == [group[-1].subject]:
            raise RuntimeError("the database went away")

    _watch_reservations(monkeypatch, failing_on_the_last)
    with pytest.raises(RuntimeError):
        await shell.apply_group(created_messages(group))

    # The group together (none fit), then one by one in a transaction: the first order's
    # reservation and the second's refusal went with it.
    assert calls == ["IDLE", "INTRANS", "INTRANS", "INTRANS"]
    assert statuses(db, *group) == [None, None, None]
    assert await stock_levels(client, product["id"]) == (3, 0, 3)
    assert announced(db, *group) == [[], [], []]


async def test_an_order_that_cannot_be_served_reserves_nothing(
    client: httpx.AsyncClient,
    admin: Bearer,
    producer: EventProducer,
    reader: TopicReader,
    db: Any,
) -> None:
    plenty = await create_product(client, admin, stock=10)
    short = await create_product(client, admin, stock=1)
    retired = await create_product(client, admin, stock=10)
    await client.patch(
        f"/inventory/products/{retired['id']}", json={"active": False}, headers=admin.headers
    )
    unknown = str(uuid.uuid4())
    created = order_created([(plenty["id"], 2), (short["id"], 3), (retired["id"], 1), (unknown, 1)])
    await publish(producer, ORDER_CREATED, created)

    received = await answer(reader, created.subject)
    assert received.topic == ORDER_FAILED
    failed = parse_envelope(received.value, OrderFailed).data
    refusals = {r.product_id: (r.requested, r.available, r.reason) for r in failed.lines}
    assert refusals == {
        short["id"]: (3, 1, "insufficient-stock"),
        retired["id"]: (1, 10, "inactive-product"),
        unknown: (1, 0, "unknown-product"),
    }
    assert failed.reason.startswith("3 of 4 lines refused")
    for product, on_hand in ((plenty, 10), (short, 1), (retired, 10)):
        assert await stock_levels(client, product["id"]) == (on_hand, 0, on_hand)
    row = reservation(db, created.subject)
    assert row is not None
    assert row["status"] == "REFUSED"
    lines = db.execute(
        "SELECT count(*) AS n FROM reservation_lines WHERE order_id = %s", (created.subject,)
    ).fetchone()
    assert lines["n"] == 0


async def test_fifty_orders_at_once_for_ten_units_confirm_exactly_ten(
    client: httpx.AsyncClient,
    admin: Bearer,
    producer: EventProducer,
    reader: TopicReader,
    settings: Settings,
    shell: EventShell[InventoryService],
) -> None:
    product = await create_product(client, admin, stock=10)
    # A second replica in the same group, so the orders are reserved by two consumers at once.
    replica = BatchConsumer(
        settings.kafka_broker,
        settings.consumer_group,
        EVENT_HANDLERS,
        shell,
        service="inventory-replica",
        dead_letters=producer,
    )
    replica_task = asyncio.create_task(replica.run())
    try:
        orders = [order_created([(product["id"], 1)]) for _ in range(50)]
        await asyncio.gather(*(publish(producer, ORDER_CREATED, o) for o in orders))
        results = [await answer(reader, o.subject) for o in orders]
    finally:
        replica.stop()
        await replica_task
    assert Counter(r.topic for r in results) == {ORDER_CONFIRMED: 10, ORDER_FAILED: 40}
    assert await stock_levels(client, product["id"]) == (10, 10, 0)
    for order in orders:
        assert len(await answers(reader, order.subject)) == 1


async def test_concurrent_reservations_never_exceed_stock(
    client: httpx.AsyncClient, admin: Bearer, shell: EventShell[InventoryService], db: Any
) -> None:
    product = await create_product(client, admin, stock=10)
    orders = [order_created([(product["id"], 1 + n % 2)]) for n in range(50)]
    outcomes = await asyncio.gather(*(apply_event(shell, ORDER_CREATED, o) for o in orders))
    confirmed = [o for o, outcome in zip(orders, outcomes, strict=True) if outcome == "confirmed"]
    reserved = sum(o.data.items[0].quantity for o in confirmed)
    assert set(outcomes) == {"confirmed", "failed"}
    assert reserved == 10
    assert await stock_levels(client, product["id"]) == (10, 10, 0)
    held = db.execute(
        "SELECT sum(quantity) AS n FROM reservation_lines WHERE product_id = %s", (product["id"],)
    ).fetchone()
    assert held["n"] == 10


async def test_an_order_that_fits_claims_nothing_and_any_other_is_claimed(
    client: httpx.AsyncClient, admin: Bearer, shell: EventShell[InventoryService], db: Any
) -> None:
    product = await create_product(client, admin, stock=3)
    fits = order_created([(product["id"], 2)])
    too_many = order_created([(product["id"], 2)])
    assert await apply_event(shell, ORDER_CREATED, fits) == "confirmed"
    assert await apply_event(shell, ORDER_CREATED, too_many) == "failed"
    assert claimed(db, fits, too_many) == [too_many.id], "one statement reserved, claiming nothing"
    # A second copy of the reserved order takes the checked path, is claimed there and finds
    # the reservation; a second copy of the refused one was claimed already.
    assert await apply_event(shell, ORDER_CREATED, fits) == "duplicate"
    assert await apply_event(shell, ORDER_CREATED, too_many) == "duplicate"
    assert await stock_levels(client, product["id"]) == (3, 2, 1)
    assert claimed(db, fits, too_many) == sorted([fits.id, too_many.id])
    first = reservation(db, fits.subject)
    assert first is not None
    assert first["status"] == "RESERVED"


async def test_multi_line_orders_in_opposite_orders_do_not_deadlock(
    client: httpx.AsyncClient, admin: Bearer, shell: EventShell[InventoryService]
) -> None:
    products = [(await create_product(client, admin, stock=1000))["id"] for _ in range(4)]
    orders = []
    for n in range(60):
        lines = [(pid, 1 + (n + i) % 3) for i, pid in enumerate(products)]
        orders.append(order_created(lines if n % 2 else list(reversed(lines))))
    async with asyncio.timeout(60):
        outcomes = await asyncio.gather(*(apply_event(shell, ORDER_CREATED, o) for o in orders))
    assert set(outcomes) == {"confirmed"}
    for pid in products:
        wanted = sum(i.quantity for o in orders for i in o.data.items if i.product_id == pid)
        assert await stock_levels(client, pid) == (1000, wanted, 1000 - wanted)


async def test_a_duplicated_message_changes_nothing(
    client: httpx.AsyncClient,
    admin: Bearer,
    producer: EventProducer,
    reader: TopicReader,
    db: Any,
) -> None:
    product = await create_product(client, admin, stock=10)
    created = order_created([(product["id"], 3)])
    await publish(producer, ORDER_CREATED, created)
    await publish(producer, ORDER_CREATED, created)
    # Same key, so the same partition: once this one is answered, both copies were handled.
    later = order_created([(product["id"], 1)])
    await publish(producer, ORDER_CREATED, later, key=created.subject)
    await answer(reader, later.subject)

    assert [r.topic for r in await answers(reader, created.subject)] == [ORDER_CONFIRMED]
    assert await stock_levels(client, product["id"]) == (10, 4, 6)
    # The first copy reserved in one statement, claiming nothing; the second found the
    # reservation there and took the checked path, which claims the event.
    claimed = db.execute(
        "SELECT count(*) AS n FROM processed_events WHERE event_id = %s", (created.id,)
    ).fetchone()
    assert claimed["n"] == 1


async def test_a_cancelled_order_releases_its_units(
    client: httpx.AsyncClient,
    admin: Bearer,
    producer: EventProducer,
    reader: TopicReader,
    db: Any,
) -> None:
    product = await create_product(client, admin, stock=10)
    created = order_created([(product["id"], 4)])
    await publish(producer, ORDER_CREATED, created)
    assert (await answer(reader, created.subject)).topic == ORDER_CONFIRMED
    assert await stock_levels(client, product["id"]) == (10, 4, 6)

    topic, cancelled = status_changed(created.subject, "CANCELLED", version=2)
    await publish(producer, topic, cancelled)

    async def released() -> bool:
        return await stock_levels(client, product["id"]) == (10, 0, 10)

    await eventually(released, what="the reservation to be released")
    row = reservation(db, created.subject)
    assert row is not None
    assert (row["status"], row["reason"], row["order_version"]) == ("RELEASED", "cancelled", 2)

    # Cancelled again (another event): nothing is released twice.
    topic, again = status_changed(created.subject, "CANCELLED", version=2)
    await publish(producer, topic, again)
    await eventually(lambda: _claimed(db, again.id), what="the second cancellation to be processed")
    assert await stock_levels(client, product["id"]) == (10, 0, 10)


async def _claimed(db: Any, event_id: str) -> bool:
    row = db.execute(
        "SELECT count(*) AS n FROM processed_events WHERE event_id = %s", (event_id,)
    ).fetchone()
    return bool(row["n"])


async def test_an_order_cancelled_before_it_arrives_reserves_nothing(
    client: httpx.AsyncClient,
    admin: Bearer,
    producer: EventProducer,
    reader: TopicReader,
    db: Any,
) -> None:
    product = await create_product(client, admin, stock=10)
    order_id = str(uuid.uuid4())
    topic, cancelled = status_changed(order_id, "CANCELLED", previous="CREATED", version=2)
    await publish(producer, topic, cancelled)

    async def tombstone() -> dict[str, Any] | None:
        return reservation(db, order_id)

    row = await eventually(tombstone, what="the tombstone")
    assert row["status"] == "CANCELLED"

    created = order_created([(product["id"], 2)], order_id=order_id)
    await publish(producer, ORDER_CREATED, created)
    later = order_created([(product["id"], 1)])
    await publish(producer, ORDER_CREATED, later, key=order_id)
    await answer(reader, later.subject)

    assert await answers(reader, order_id) == []
    assert await stock_levels(client, product["id"]) == (10, 1, 9)
    after = reservation(db, order_id)
    assert after is not None
    assert after["status"] == "CANCELLED"


async def test_shipping_commits_the_reservation(
    client: httpx.AsyncClient,
    admin: Bearer,
    producer: EventProducer,
    reader: TopicReader,
    db: Any,
) -> None:
    product = await create_product(client, admin, stock=10)
    created = order_created([(product["id"], 3)])
    await publish(producer, ORDER_CREATED, created)
    assert (await answer(reader, created.subject)).topic == ORDER_CONFIRMED

    topic, shipped = status_changed(created.subject, "SHIPPED", version=3)
    await publish(producer, topic, shipped)

    async def committed() -> bool:
        return await stock_levels(client, product["id"]) == (7, 0, 7)

    await eventually(committed, what="the reservation to be committed")
    row = reservation(db, created.subject)
    assert row is not None
    assert row["status"] == "COMMITTED"

    # A cancel that arrives after shipping gives nothing back.
    topic, cancelled = status_changed(created.subject, "CANCELLED", version=4)
    await publish(producer, topic, cancelled)
    await eventually(lambda: _claimed(db, cancelled.id), what="the late cancel")
    assert await stock_levels(client, product["id"]) == (7, 0, 7)


async def test_an_unprocessable_message_is_dead_lettered_and_the_next_one_is_served(
    client: httpx.AsyncClient,
    admin: Bearer,
    producer: EventProducer,
    reader: TopicReader,
) -> None:
    product = await create_product(client, admin, stock=10)
    key = str(uuid.uuid4())
    await producer.publish(ORDER_CREATED, key, b"this is not an event")
    broken = order_created([(product["id"], 1)])
    no_items = broken.to_bytes().replace(b'"items"', b'"things"')
    await producer.publish(ORDER_CREATED, key, no_items)
    after = order_created([(product["id"], 2)])
    await publish(producer, ORDER_CREATED, after, key=key)

    assert (await answer(reader, after.subject)).topic == ORDER_CONFIRMED

    async def dead_letters() -> list[Received]:
        found = reader.received(key, dead_letter_topic(ORDER_CREATED))
        return found if len(found) == 2 else []

    first, second = await eventually(dead_letters, what="two dead letters")
    assert first.value == b"this is not an event"
    assert second.value == no_items
    for letter in (first, second):
        assert letter.headers["dlq-source-topic"] == ORDER_CREATED
        assert letter.headers["dlq-error"]
    assert await stock_levels(client, product["id"]) == (10, 2, 8)


async def test_a_crashed_consumer_answers_every_order_once_after_restart(
    client: httpx.AsyncClient,
    admin: Bearer,
    producer: EventProducer,
    reader: TopicReader,
    inventory_app: FastAPI,
) -> None:
    product = await create_product(client, admin, stock=100)
    orders = [order_created([(product["id"], 1)]) for _ in range(40)]
    await asyncio.gather(*(publish(producer, ORDER_CREATED, o) for o in orders[:20]))
    await answer(reader, orders[0].subject)
    await inventory_app.state.runtime.kill("consumer")
    await asyncio.gather(*(publish(producer, ORDER_CREATED, o) for o in orders[20:]))
    inventory_app.state.runtime.start("consumer")

    for order in orders:
        assert (await answer(reader, order.subject)).topic == ORDER_CONFIRMED
    await asyncio.sleep(1.0)  # time for a redelivered copy to show up, were there one
    for order in orders:
        assert len(await answers(reader, order.subject)) == 1
    assert await stock_levels(client, product["id"]) == (100, 40, 60)


async def test_a_group_finds_its_stock_by_index_in_a_large_catalogue(
    inventory_app: FastAPI, settings: Settings
) -> None:
    """The plan guesses how many lines a statement unnests; joined on that guess alone, a
    catalogue of a thousand products was read whole by every reservation."""
    conn = await connect(settings.db_conninfo, "inventory")
    scans = "SELECT relname, seq_scan FROM pg_stat_xact_user_tables WHERE seq_scan > 0"
    try:
        async with conn.transaction(force_rollback=True):
            await conn.execute(
                """
                WITH product AS (
                    INSERT INTO products (sku, name, price, currency)
                    SELECT 'bulk-' || n, 'Bulk ' || n, 1, 'USD'
                    FROM generate_series(1, 1000) AS n
                    RETURNING id
                )
                INSERT INTO stock (product_id, on_hand) SELECT id, 10 FROM product
                """
            )
            await conn.execute("ANALYZE products, stock")
            cursor = await conn.execute(
                "SELECT id::text FROM products WHERE sku IN ('bulk-7', 'bulk-400') ORDER BY sku"
            )
            products = [row["id"] for row in await cursor.fetchall()]
            orders = [
                repo.NewReservation(
                    order_id=order_id,
                    user_id="bulk-buyer",
                    order_version=1,
                    lines=[RequestedLine(product_id, 2)],
                    expires_at=datetime.now(UTC) + timedelta(minutes=15),
                    confirmed=OutboxRow(str(uuid.uuid4()), ORDER_CONFIRMED, order_id, b"{}", None),
                )
                for order_id, product_id in ((str(uuid.uuid4()), p) for p in products)
            ]
            before = await (await conn.execute(scans)).fetchall()

            reserved = await repo.reserve_all_if_available(conn, orders)

            after = await (await conn.execute(scans)).fetchall()
            cursor = await conn.execute(
                "SELECT reserved FROM stock WHERE product_id = ANY(%s::uuid[])", (products,)
            )
            levels = [row["reserved"] for row in await cursor.fetchall()]
    finally:
        await conn.close()
    assert reserved == {o.order_id for o in orders}
    assert levels == [2, 2]
    assert after == before
