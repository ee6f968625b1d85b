"""The analytics HTTP API (admins only): thin handlers over `AnalyticsService` (see README)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from services.analytics.domain import Granularity, Period
from services.analytics.schemas import (
    MAX_PAGE_SIZE,
    Dashboard,
    EventOut,
    EventPage,
    GroupOut,
    GroupTopicOut,
    KafkaOut,
    OrdersPerDay,
    PartitionOut,
    QueueOut,
    QueuesOut,
    Revenue,
    StatusDistribution,
    TopicOut,
)
from services.analytics.service import AnalyticsService
from services.kit.models import Text
from services.kit.security import CurrentAdmin

router = APIRouter(prefix="/analytics", tags=["analytics"])


async def _service(request: Request) -> AnalyticsService:
    service: AnalyticsService = request.app.state.analytics
    return service


Analytics = Annotated[AnalyticsService, Depends(_service)]


async def _period(
    analytics: Analytics,
    start: Annotated[
        date | None, Query(alias="from", description="First day (UTC), inclusive")
    ] = None,
    end: Annotated[date | None, Query(alias="to", description="Last day (UTC), inclusive")] = None,
    granularity: Granularity = Granularity.DAY,
) -> Period:
    return analytics.period(start, end, granularity)


ReportPeriod = Annotated[Period, Depends(_period)]


@router.get("/dashboard", operation_id="getAnalyticsDashboard")
async def dashboard(_admin: CurrentAdmin, analytics: Analytics, period: ReportPeriod) -> Dashboard:
    """Headline figures for the period (projection) and the live rates (Prometheus)."""
    return await analytics.dashboard(period)


@router.get("/orders-per-day", operation_id="getOrdersPerDay")
async def orders_per_day(
    _admin: CurrentAdmin, analytics: Analytics, period: ReportPeriod
) -> OrdersPerDay:
    """Orders placed per bucket (day, week or month), every bucket of the range present."""
    return await analytics.orders_per_day(period)


@router.get("/revenue", operation_id="getRevenue")
async def revenue(_admin: CurrentAdmin, analytics: Analytics, period: ReportPeriod) -> Revenue:
    """Revenue per bucket and currency: orders placed in it that stand confirmed, shipped or
    delivered."""
    return await analytics.revenue(period)


@router.get("/status-distribution", operation_id="getStatusDistribution")
async def status_distribution(
    _admin: CurrentAdmin, analytics: Analytics, period: ReportPeriod
) -> StatusDistribution:
    """How the orders placed in the period stand now, by status."""
    return await analytics.status_distribution(period)


@router.get("/events", operation_id="listEvents")
async def events(
    _admin: CurrentAdmin,
    analytics: Analytics,
    order_id: Annotated[Text | None, Query(alias="orderId", min_length=1, max_length=64)] = None,
    types: Annotated[
        list[Text] | None,
        Query(alias="type", max_length=20, description="Event types (order.created ...)"),
    ] = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    cursor: Annotated[Text | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> EventPage:
    """The consumed domain events, newest first."""
    page = await analytics.events(
        order_id=order_id,
        types=types,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )
    return EventPage(
        items=[EventOut.model_validate(row) for row in page.rows], next_cursor=page.next_cursor
    )


@router.get("/kafka", operation_id="getKafkaMonitor")
async def kafka(_admin: CurrentAdmin, analytics: Analytics) -> KafkaOut:
    """Topics with their partitions' end offsets, and consumer groups with their lag."""
    overview = await analytics.kafka()
    return KafkaOut(
        bootstrap=analytics.settings.kafka_broker,
        topics=[
            TopicOut(
                name=topic.name,
                messages=topic.messages,
                partitions=[PartitionOut.model_validate(p) for p in topic.partitions],
            )
            for topic in overview.topics
        ],
        groups=[
            GroupOut(
                group_id=group.group_id,
                state=group.state,
                lag=group.lag,
                topics=[GroupTopicOut.model_validate(t) for t in group.topics],
            )
            for group in overview.groups
        ],
        observed_at=datetime.now(UTC),
    )


@router.get("/queues", operation_id="getQueueMonitor")
async def queues(_admin: CurrentAdmin, analytics: Analytics) -> QueuesOut:
    """RabbitMQ's queues: depths, consumers and rates (from its management API)."""
    found = await analytics.queues()
    return QueuesOut(
        vhost=analytics.settings.vhost,
        queues=[QueueOut.model_validate(q) for q in found],
        observed_at=datetime.now(UTC),
    )
