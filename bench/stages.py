"""Where each order's time goes: its path from POST to the CONFIRMED push, cut into stages.

The cuts are timestamps the pipeline already writes, read back from the stack's database after
a run, plus the two the generator takes itself (the POST sent, the push received):

- gateway: from the POST sent to the create transaction's start (`order_timeline.at` of
  version 1): the gateway's proxying, the orders service's request handling and pricing;
- create transaction: from its start to its commit;
- relay: from that commit to the start of inventory's reservation (the reservation's
  `created_at`, its statement's or transaction's start): outbox relay, Kafka, the fetch;
- inventory: from that start to its commit;
- relay back: from inventory's commit to the start of the orders consumer's transaction
  (`order_timeline.at` of version 2);
- orders consumer: from that start to its commit;
- push: from the orders consumer's commit to the order.updated push received (the after-commit
  runner, Redis, the gateway's Socket.IO server).

A consumer that applies a group of events in one transaction (kit/consumer.py) starts them all
at the group's start, so under load a consumer stage holds the whole group's transaction and the
stage before it ends when the group starts.

`now()` in PostgreSQL is the transaction's start; a commit's time is
`pg_xact_commit_timestamp(xmin)` of a row the transaction wrote and nothing updated since (the
timeline entries and the reservation's lines), which PostgreSQL keeps with `track_commit_timestamp`
on (the development stack turns it on: devstack/servers.py). The stages add up to the order's
end-to-end time; every clock is this machine's.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench.stats import percentile
from devstack.servers import postgres_conninfo
from devstack.stack import DATABASE, DB_PASSWORD, StackConfig, run_dir

STAGES = (
    "gateway",
    "create transaction",
    "relay",
    "inventory",
    "relay back",
    "orders consumer",
    "push",
)

MARKS = """
SELECT created.order_id::text AS order_id,
       created.at AS create_start,
       pg_xact_commit_timestamp(created.xmin) AS create_commit,
       reserved.created_at AS inventory_start,
       pg_xact_commit_timestamp(line.xmin) AS inventory_commit,
       settled.at AS consumer_start,
       pg_xact_commit_timestamp(settled.xmin) AS consumer_commit
FROM orders.order_timeline AS created
JOIN orders.order_timeline AS settled
  ON settled.order_id = created.order_id AND settled.version = 2
JOIN inventory.reservations AS reserved ON reserved.order_id = created.order_id::text
JOIN LATERAL (
    SELECT xmin FROM inventory.reservation_lines WHERE order_id = reserved.order_id LIMIT 1
) AS line ON true
WHERE created.version = 1 AND created.order_id = ANY(%s::uuid[])
"""


@dataclass
class Breakdown:
    """Milliseconds spent in each stage, one value per order."""

    ms: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    unavailable: str = ""
    """Why there is no breakdown (the database unreachable, commit timestamps off), or ""."""


def conninfo() -> str | None:
    """The running stack's database as its superuser, or None when no stack runs."""
    config = StackConfig.load(run_dir())
    if config is None:
        return None
    return postgres_conninfo(config.ports["postgres"], DB_PASSWORD, DATABASE)


def breakdown(orders: dict[str, tuple[float, float]]) -> Breakdown:
    """The stages of `orders` (order id -> (POST sent, push received), Unix seconds)."""
    result = Breakdown()
    info = conninfo()
    if info is None or not orders:
        result.unavailable = "no running stack" if info is None else "no settled order"
        return result
    try:
        with psycopg.connect(info, row_factory=dict_row) as conn:
            on = conn.execute("SHOW track_commit_timestamp").fetchone()
            if not on or on["track_commit_timestamp"] != "on":
                result.unavailable = "PostgreSQL runs without track_commit_timestamp"
                return result
            rows = conn.execute(MARKS, (list(orders),)).fetchall()
    except psycopg.Error as error:
        result.unavailable = f"database: {error}"
        return result
    for row in rows:
        sent, pushed = orders[row["order_id"]]
        if row["create_commit"] is None:
            continue  # committed before commit timestamps were on
        marks = [sent, *(_seconds(row[k]) for k in list(row)[1:]), pushed]
        for stage, (start, end) in zip(STAGES, itertools.pairwise(marks), strict=True):
            result.ms[stage].append((end - start) * 1000)
    return result


NOTIFIED = """
SELECT count(*) AS n FROM notifications.notifications
WHERE event_type = 'order.confirmed' AND order_id = ANY(%s::uuid[])
"""
POLL_SECONDS = 0.2


def notified(conn: psycopg.Connection[dict[str, Any]], order_ids: list[str]) -> int:
    """How many of `order_ids` have their CONFIRMED notification recorded."""
    row = conn.execute(NOTIFIED, (order_ids,)).fetchone()
    return int(row["n"]) if row else 0


def notifications_caught_up(
    order_ids: list[str], last_push: float, wait_seconds: float
) -> float | str:
    """Seconds from `last_push` (a `time.perf_counter()` reading) until the notifications
    service has recorded the CONFIRMED notification of every one of `order_ids`, polled on
    one connection; otherwise why there is no figure."""
    info = conninfo()
    if info is None:
        return "no running stack"
    try:
        with psycopg.connect(info, row_factory=dict_row) as conn:
            while notified(conn, order_ids) < len(order_ids):
                if time.perf_counter() - last_push > wait_seconds:
                    return f"not within {wait_seconds:.0f} s"
                time.sleep(POLL_SECONDS)
    except psycopg.Error as error:
        return f"database: {error}"
    return max(0.0, time.perf_counter() - last_push)


NOTIFIED_BY_TYPE = """
SELECT n.event_type, count(DISTINCT n.id) AS notifications,
       count(d.id) FILTER (WHERE d.status <> 'skipped') AS deliveries
FROM notifications.notifications n
LEFT JOIN notifications.deliveries d ON d.notification_id = n.id
WHERE n.order_id = ANY(%s::uuid[])
GROUP BY n.event_type
"""


@dataclass
class Notified:
    """What the notifications service made for a rate's orders, per order: in-app
    notifications by event type and the deliveries handed to a channel (not skipped). An
    order's creation is not notified when its confirmation was recorded first (the stale
    rule), which depends on the order the two events were fetched in; what the notifications
    service and the workers spend per order follows it."""

    per_order: dict[str, float] = field(default_factory=dict)
    deliveries_per_order: float = 0.0
    unavailable: str | None = None


def notified_per_order(order_ids: list[str]) -> Notified:
    """`Notified` for `order_ids` (read once their notifications caught up)."""
    info = conninfo()
    if info is None or not order_ids:
        return Notified(unavailable="no running stack" if info is None else "no settled order")
    try:
        with psycopg.connect(info, row_factory=dict_row) as conn:
            rows = conn.execute(NOTIFIED_BY_TYPE, (order_ids,)).fetchall()
    except psycopg.Error as error:
        return Notified(unavailable=f"database: {error}")
    orders = len(order_ids)
    return Notified(
        per_order={r["event_type"]: r["notifications"] / orders for r in rows},
        deliveries_per_order=sum(r["deliveries"] for r in rows) / orders,
    )


def _seconds(at: datetime | None) -> float:
    return at.timestamp() if at is not None else float("nan")


def table(rates: list[tuple[int, Breakdown]]) -> list[str]:
    """The stage table: p50 / p99 ms per stage and offered rate."""
    if not rates:
        return []
    lines = [
        "",
        "### Where an order's time goes (p50 / p99 ms per stage, bench/stages.py)",
        "",
        "| stage | " + " | ".join(f"{rate}/s" for rate, _ in rates) + " |",
        "|---|" + "---|" * len(rates),
    ]
    for stage in STAGES:
        cells = []
        for _, found in rates:
            values = found.ms[stage]
            cells.append(
                f"{percentile(values, 50):.1f} / {percentile(values, 99):.1f}"
                if values
                else found.unavailable or "-"
            )
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    counted = " | ".join(str(len(found.ms[STAGES[0]])) for _, found in rates)
    lines.append(f"| orders counted | {counted} |")
    lines += [
        "",
        "Stages are cut at the pipeline's own timestamps (transaction starts, commit times, the "
        "reservations) and the generator's; a p99 column is each stage's own, so they do not "
        "add up to the end-to-end p99.",
    ]
    return lines


EXPIRING = """
SELECT count(*) AS n FROM inventory.reservations
WHERE status = 'RESERVED' AND expires_at < now() + make_interval(secs => %s)
"""


def expiring_reservations(within_seconds: float) -> int | None:
    """Reservations of earlier orders that expire within `within_seconds` (each cancels its
    order through every service: work on the cores that no run offered); None if unknown."""
    info = conninfo()
    if info is None:
        return None
    try:
        with psycopg.connect(info, row_factory=dict_row) as conn:
            row = conn.execute(EXPIRING, (within_seconds,)).fetchone()
    except psycopg.Error:
        return None
    return int(row["n"]) if row else None
