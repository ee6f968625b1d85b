"""The analytics service's decisions: the projection of the order events, and the reports.

**Projection.** `project` applies a lone consumed event, or a group the consumer fetched
together, in one statement on the consumer shell's connection (handlers.py): it keeps each
event in `event_log` (an event kept before changes nothing, so a replay from the start never
counts twice) and moves each order's row in `order_facts`: the creation's facts whenever they
arrive, the status only when its order version is newer than the one known (events of one
order come on several topics, in any order).

**Reports.** Counts, revenue and the status distribution are exact, from the projection; the
rates and recent figures come from Prometheus (`LIVE`). Prometheus is asked with a short
timeout; when it does not answer, a report still answers from the projection, with its live
figures empty and `sources.prometheus` saying why.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from services.analytics import repository as repo
from services.analytics.brokers import (
    BrokerUnavailable,
    KafkaOverview,
    QueueState,
    kafka_overview,
    rabbitmq_queues,
)
from services.analytics.domain import (
    STATUSES,
    Granularity,
    InvalidPeriod,
    Period,
    buckets,
    resolve_period,
)
from services.analytics.errors import BrokerDown, InvalidCursor, InvalidRange
from services.analytics.prometheus import Prometheus, PrometheusUnavailable
from services.analytics.schemas import (
    CurrencyRevenue,
    Dashboard,
    Figure,
    OrdersPerDay,
    OrdersPoint,
    ProjectionState,
    PrometheusState,
    Revenue,
    RevenuePoint,
    Sources,
    StatusDistribution,
    StatusShare,
)
from services.analytics.settings import Settings
from services.kit.consumer import Applied
from services.kit.db import DictConnection, Pool
from services.kit.events import Envelope
from services.kit.pagination import MalformedCursor, decode_cursor, encode_cursor

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiveFigure:
    query: str
    unit: str


LIVE: dict[str, LiveFigure] = {
    "ordersPerMinute": LiveFigure("sum(rate(orders_created_total[5m])) * 60", "orders/min"),
    "confirmationsPerMinute": LiveFigure(
        'sum(rate(orders_transitions_total{status="CONFIRMED"}[5m])) * 60', "orders/min"
    ),
    "confirmationP95Seconds": LiveFigure(
        "histogram_quantile(0.95, sum by (le) "
        "(rate(orders_create_to_confirmed_seconds_bucket[5m])))",
        "s",
    ),
    "apiErrorRatio": LiveFigure(
        'sum(rate(http_requests_total{status="5xx"}[5m])) / sum(rate(http_requests_total[5m]))',
        "ratio",
    ),
    "deliveriesPerMinute": LiveFigure(
        'sum(rate(notifications_worker_deliveries_total{outcome="sent"}[5m])) * 60',
        "deliveries/min",
    ),
    "consumerLagMessages": LiveFigure("sum(events_consumer_lag_messages)", "messages"),
    "deadLetters": LiveFigure('sum(notifications_dead_letters{status="dead"})', "messages"),
    "liveConnections": LiveFigure("sum(gateway_socketio_connections)", "connections"),
}
"""The Prometheus figures a report may carry, by name."""

TRANSITIONS_BY_STATUS = "sum by (status) (rate(orders_transitions_total[5m])) * 60"
"""Orders reaching each status per minute (the status distribution's live side)."""


@dataclass(frozen=True, slots=True)
class EventFacts:
    """What an order event says about its order (handlers.py reads it from each topic)."""

    order_id: str
    user_id: str
    version: int
    change: repo.Creation | repo.StatusAt | None
    """What it changes in the order's row: none for a reservation that expired."""


PROJECTED = Applied("projected")
"""What applying a new event did (the projection sets nothing off after its commit)."""


@dataclass(frozen=True, slots=True)
class EventPageRows:
    rows: list[repo.LoggedEvent]
    next_cursor: str | None


class AnalyticsService:
    def __init__(self, pool: Pool, prometheus: Prometheus, settings: Settings) -> None:
        self.pool = pool
        self.prometheus = prometheus
        self.settings = settings

    # --- the projection (consumed events) ---------------------------------------------------

    async def project(
        self, conn: DictConnection, events: Sequence[tuple[str, Envelope[Any], EventFacts]]
    ) -> list[Applied | None]:
        """Apply order events, in their order, in one statement (on the consumer's connection);
        for each, None if the event log had it already (kept before, or earlier in `events`:
        it changes nothing)."""
        entries = [
            (
                repo.NewLogEntry(
                    event_id=uuid.UUID(event.id),
                    topic=topic,
                    type=event.type,
                    source=event.source,
                    order_id=facts.order_id,
                    user_id=facts.user_id,
                    version=facts.version,
                    occurred_at=event.time,
                    data=event.data.model_dump(mode="json", by_alias=True),
                ),
                facts.change,
            )
            for topic, event, facts in events
        ]
        kept = await repo.project(conn, entries)
        applied: list[Applied | None] = []
        for entry, _ in entries:
            if entry.event_id in kept:
                kept.discard(entry.event_id)  # a second copy in `events` was kept nothing for
                applied.append(PROJECTED)
            else:
                applied.append(None)
        return applied

    async def clear(self) -> None:
        """Empty the projection (before a replay from the start)."""
        async with self.pool.connection() as conn, conn.transaction():
            await repo.clear(conn)

    # --- reports ------------------------------------------------------------------------------

    def period(self, start: date | None, end: date | None, granularity: Granularity) -> Period:
        try:
            return resolve_period(start, end, granularity, datetime.now(UTC).date())
        except InvalidPeriod as exc:
            raise InvalidRange(str(exc)) from exc

    async def orders_per_day(self, period: Period) -> OrdersPerDay:
        async with self.pool.connection() as conn:
            rows = await repo.orders_per_bucket(conn, period)
            last_event_at = await repo.last_event_at(conn)
        live, prometheus = await self._live(["ordersPerMinute", "confirmationsPerMinute"])
        found = {row.period: row for row in rows}
        points = [
            OrdersPoint.model_validate(found.get(day) or repo.OrdersInBucket(day, 0, 0, 0, 0))
            for day in buckets(period)
        ]
        return OrdersPerDay(
            start=period.start,
            end=period.end,
            granularity=period.granularity,
            points=points,
            total=sum(p.orders for p in points),
            live=live,
            sources=_sources(last_event_at, prometheus),
        )

    async def revenue(self, period: Period) -> Revenue:
        async with self.pool.connection() as conn:
            rows = await repo.revenue_per_bucket(conn, period)
            last_event_at = await repo.last_event_at(conn)
        live, prometheus = await self._live(["confirmationsPerMinute"])
        return Revenue(
            start=period.start,
            end=period.end,
            granularity=period.granularity,
            currencies=_by_currency(rows, period),
            live=live,
            sources=_sources(last_event_at, prometheus),
        )

    async def status_distribution(self, period: Period) -> StatusDistribution:
        async with self.pool.connection() as conn:
            counts = await repo.status_counts(conn, period)
            last_event_at = await repo.last_event_at(conn)
        prometheus = PrometheusState(available=True)
        live: dict[str, Figure] = {}
        try:
            rates = await self.prometheus.vector(TRANSITIONS_BY_STATUS, "status")
            for status in STATUSES:
                live[f"{status.lower()}PerMinute"] = Figure(
                    value=rates.get(status), unit="orders/min", source="prometheus"
                )
        except PrometheusUnavailable as exc:
            prometheus = _unavailable(exc)
        total = sum(c.orders for c in counts)
        return StatusDistribution(
            start=period.start,
            end=period.end,
            granularity=period.granularity,
            total=total,
            statuses=_shares(counts, total),
            live=live,
            sources=_sources(last_event_at, prometheus),
        )

    async def dashboard(self, period: Period) -> Dashboard:
        async with self.pool.connection() as conn:
            totals = await repo.totals(conn, period)
            last_event_at = await repo.last_event_at(conn)
            revenue_rows = await repo.revenue_per_bucket(conn, period)
            counts = await repo.status_counts(conn, period)
        live, prometheus = await self._live(list(LIVE))
        figures = {
            "orders": _count(totals.orders),
            "pendingOrders": _count(totals.pending),
            "confirmedOrders": _count(totals.revenue_orders),
            "failedOrders": _count(totals.failed),
            "cancelledOrders": _count(totals.cancelled),
            **live,
        }
        return Dashboard(
            start=period.start,
            end=period.end,
            granularity=period.granularity,
            figures=figures,
            revenue=_by_currency(revenue_rows, period),
            statuses=_shares(counts, totals.orders),
            live=live,
            sources=_sources(last_event_at, prometheus),
        )

    async def _live(self, names: list[str]) -> tuple[dict[str, Figure], PrometheusState]:
        try:
            values = await self.prometheus.figures({name: LIVE[name].query for name in names})
        except PrometheusUnavailable as exc:
            log.warning("prometheus unavailable; answering from the projection only: %s", exc)
            values, state = {}, _unavailable(exc)
        else:
            state = PrometheusState(available=True)
        figures = {
            name: Figure(value=values.get(name), unit=LIVE[name].unit, source="prometheus")
            for name in names
        }
        return figures, state

    # --- the event log and the broker monitor ----------------------------------------------

    async def events(
        self,
        *,
        order_id: str | None,
        types: list[str] | None,
        since: datetime | None,
        until: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> EventPageRows:
        after = _decode(cursor) if cursor else None
        async with self.pool.connection() as conn:
            rows = await repo.list_events(
                conn,
                order_id=order_id,
                types=types,
                since=since,
                until=until,
                after=after,
                limit=limit + 1,
            )
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if more else None
        next_cursor = (
            encode_cursor(last.occurred_at.isoformat(), str(last.event_id)) if last else None
        )
        return EventPageRows(rows, next_cursor)

    async def kafka(self) -> KafkaOverview:
        try:
            return await asyncio.to_thread(
                kafka_overview, self.settings.kafka_broker, self.settings.monitor_timeout_seconds
            )
        except BrokerUnavailable as exc:
            raise BrokerDown("Kafka", str(exc)) from exc

    async def queues(self) -> list[QueueState]:
        try:
            return await rabbitmq_queues(
                self.settings.management_url,
                self.settings.management_auth,
                self.settings.vhost,
                self.settings.monitor_timeout_seconds,
            )
        except BrokerUnavailable as exc:
            raise BrokerDown("RabbitMQ", str(exc)) from exc


def _count(value: int) -> Figure:
    return Figure(value=value, unit="orders", source="projection")


def _sources(last_event_at: datetime | None, prometheus: PrometheusState) -> Sources:
    return Sources(
        projection=ProjectionState(available=True, last_event_at=last_event_at),
        prometheus=prometheus,
    )


def _unavailable(exc: PrometheusUnavailable) -> PrometheusState:
    return PrometheusState(
        available=False, detail=f"Prometheus did not answer ({exc}); live figures are empty"
    )


def _by_currency(rows: list[repo.RevenueInBucket], period: Period) -> list[CurrencyRevenue]:
    per_currency: dict[str, dict[date, repo.RevenueInBucket]] = {}
    for row in rows:
        per_currency.setdefault(row.currency, {})[row.period] = row
    found = []
    for currency, by_day in sorted(per_currency.items()):
        points = [
            RevenuePoint(
                period=day,
                revenue=by_day[day].revenue if day in by_day else Decimal("0.00"),
                orders=by_day[day].orders if day in by_day else 0,
            )
            for day in buckets(period)
        ]
        found.append(
            CurrencyRevenue(
                currency=currency,
                total=sum((p.revenue for p in points), Decimal("0.00")),
                orders=sum(p.orders for p in points),
                points=points,
            )
        )
    return found


def _shares(counts: list[repo.StatusCount], total: int) -> list[StatusShare]:
    by_status: Mapping[str, int] = {c.status: c.orders for c in counts}
    return [
        StatusShare(
            status=status,
            orders=by_status.get(status, 0),
            share=by_status.get(status, 0) / total if total else 0.0,
        )
        for status in STATUSES
    ]


def _decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    def parse(at: str, event_id: str) -> tuple[datetime, uuid.UUID]:
        return datetime.fromisoformat(at), uuid.UUID(event_id)

    try:
        return decode_cursor(cursor, parse)
    except MalformedCursor as exc:
        raise InvalidCursor() from exc
