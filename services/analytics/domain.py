"""Pure rules of the analytics service: report periods, buckets and what counts as revenue.

No I/O; unit-tested in tests/unit/analytics/.

- A report covers whole UTC days, `start` to `end` inclusive; without them, the last 30 days
  up to today. Its `granularity` (day, week, month) cuts it into buckets that start on the
  day, the ISO week's Monday or the month's first; every bucket of the range is reported, an
  empty one as zero, so a chart needs no gap filling.
- A range may hold at most `MAX_BUCKETS[granularity]` buckets (a year of days, five years of
  weeks, ten of months), so no query scans or returns without bound.
- Revenue is the total of the orders placed in the period that inventory confirmed and that
  were not cancelled since: status CONFIRMED, SHIPPED or DELIVERED. An order is counted in the
  bucket of the day it was placed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

DEFAULT_DAYS = 30

STATUSES = ("CREATED", "CONFIRMED", "FAILED", "SHIPPED", "DELIVERED", "CANCELLED")
REVENUE_STATUSES = ("CONFIRMED", "SHIPPED", "DELIVERED")


class Granularity(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


MAX_BUCKETS = {Granularity.DAY: 366, Granularity.WEEK: 260, Granularity.MONTH: 120}


class InvalidPeriod(ValueError):
    """The range is backwards or holds more buckets than its granularity allows."""


@dataclass(frozen=True, slots=True)
class Period:
    start: date
    end: date
    """Inclusive."""
    granularity: Granularity

    @property
    def since(self) -> datetime:
        """The first instant of the period (UTC)."""
        return datetime.combine(self.start, time.min, UTC)

    @property
    def until(self) -> datetime:
        """The first instant after the period (UTC), exclusive."""
        return datetime.combine(self.end + timedelta(days=1), time.min, UTC)


def resolve_period(
    start: date | None, end: date | None, granularity: Granularity, today: date
) -> Period:
    """The period a request asks for (see the module docstring); raises `InvalidPeriod`."""
    end = end or (today if start is None else max(start, today))
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise InvalidPeriod(f"from ({start}) is after to ({end})")
    period = Period(start, end, granularity)
    count = len(buckets(period))
    if count > MAX_BUCKETS[granularity]:
        raise InvalidPeriod(
            f"{count} {granularity} buckets asked for; at most {MAX_BUCKETS[granularity]} "
            f"at this granularity: shorten the range or use a coarser granularity"
        )
    return period


def bucket_start(day: date, granularity: Granularity) -> date:
    """The first day of the bucket holding `day` (as PostgreSQL's date_trunc cuts them)."""
    if granularity is Granularity.WEEK:
        return day - timedelta(days=day.weekday())
    if granularity is Granularity.MONTH:
        return day.replace(day=1)
    return day


def _next_bucket(start: date, granularity: Granularity) -> date:
    if granularity is Granularity.WEEK:
        return start + timedelta(days=7)
    if granularity is Granularity.MONTH:
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=1)


def buckets(period: Period) -> list[date]:
    """The first day of every bucket the period touches, in order."""
    found = []
    current = bucket_start(period.start, period.granularity)
    while current <= period.end:
        found.append(current)
        current = _next_bucket(current, period.granularity)
        if len(found) > MAX_BUCKETS[period.granularity]:
            break  # resolve_period refuses it; no need to count further
    return found
