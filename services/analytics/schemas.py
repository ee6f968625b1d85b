"""Response bodies of the analytics API (camelCase JSON).

Every report names the source of each figure: `projection` (exact, from the order events this
service consumed into its own tables) or `prometheus` (rates and recent figures from the
platform's metrics), and says in `sources` whether each source answered. Money is a decimal
string, per currency, never summed across currencies.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from services.analytics.domain import Granularity
from services.kit.models import CamelModel

MAX_PAGE_SIZE = 200

Source = Literal["projection", "prometheus"]


class Figure(CamelModel):
    value: float | None
    """None: not measured yet, or the source did not answer (see `sources`)."""
    unit: str
    source: Source


class ProjectionState(CamelModel):
    available: bool
    last_event_at: datetime | None
    """When the newest event the projection holds happened (None: it holds none yet)."""


class PrometheusState(CamelModel):
    available: bool
    detail: str | None = None
    """Why it did not answer."""


class Sources(CamelModel):
    projection: ProjectionState
    prometheus: PrometheusState


class Report(CamelModel):
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    granularity: Granularity
    live: dict[str, Figure]
    """Rates and recent figures (Prometheus)."""
    sources: Sources


class OrdersPoint(CamelModel):
    period: date
    orders: int
    confirmed: int
    """Of those orders, how many stand confirmed, shipped or delivered."""
    failed: int
    cancelled: int


class OrdersPerDay(Report):
    source: Source = "projection"
    points: list[OrdersPoint]
    total: int


class RevenuePoint(CamelModel):
    period: date
    revenue: Decimal
    orders: int


class CurrencyRevenue(CamelModel):
    currency: str
    total: Decimal
    orders: int
    points: list[RevenuePoint]


class Revenue(Report):
    source: Source = "projection"
    currencies: list[CurrencyRevenue]


class StatusShare(CamelModel):
    status: str
    orders: int
    share: float
    """Of all orders placed in the period, 0..1."""


class StatusDistribution(Report):
    source: Source = "projection"
    total: int
    statuses: list[StatusShare]


class Dashboard(Report):
    figures: dict[str, Figure]
    """Counts over the period (projection) and the live figures' headline values."""
    revenue: list[CurrencyRevenue]
    statuses: list[StatusShare]


class EventOut(CamelModel):
    event_id: uuid.UUID
    topic: str
    type: str
    source: str
    order_id: str
    user_id: str | None
    version: int | None
    occurred_at: datetime
    recorded_at: datetime
    data: dict[str, Any]


class EventPage(CamelModel):
    items: list[EventOut]
    next_cursor: str | None


class PartitionOut(CamelModel):
    partition: int
    end_offset: int


class TopicOut(CamelModel):
    name: str
    messages: int
    partitions: list[PartitionOut]


class GroupTopicOut(CamelModel):
    topic: str
    committed: int
    end_offset: int
    lag: int


class GroupOut(CamelModel):
    group_id: str
    state: str
    lag: int
    topics: list[GroupTopicOut]


class KafkaOut(CamelModel):
    bootstrap: str
    topics: list[TopicOut]
    groups: list[GroupOut]
    observed_at: datetime


class QueueOut(CamelModel):
    name: str
    type: str
    messages: int
    ready: int
    unacknowledged: int
    consumers: int
    publish_rate: float
    deliver_rate: float
    ack_rate: float


class QueuesOut(CamelModel):
    vhost: str
    queues: list[QueueOut]
    observed_at: datetime
