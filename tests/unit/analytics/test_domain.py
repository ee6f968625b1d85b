"""Report periods, buckets and the analytics PromQL (pure: no servers)."""

from __future__ import annotations

from datetime import date

import pytest

from services.analytics.domain import (
    MAX_BUCKETS,
    Granularity,
    InvalidPeriod,
    Period,
    bucket_start,
    buckets,
    resolve_period,
)
from services.analytics.prometheus import _scalar
from services.analytics.service import LIVE, TRANSITIONS_BY_STATUS
from tests.unit.observability.support import exported_names, metric_names

TODAY = date(2026, 12, 1)


def test_without_dates_a_report_covers_the_last_30_days() -> None:
    period = resolve_period(None, None, Granularity.DAY, TODAY)
    assert (period.start, period.end) == (date(2026, 11, 2), TODAY)
    assert len(buckets(period)) == 30


def test_a_start_alone_runs_to_today_and_an_end_alone_covers_30_days() -> None:
    assert resolve_period(date(2026, 11, 20), None, Granularity.DAY, TODAY).end == TODAY
    assert resolve_period(None, date(2026, 1, 30), Granularity.DAY, TODAY).start == date(2026, 1, 1)


def test_a_backwards_or_unbounded_range_is_refused() -> None:
    with pytest.raises(InvalidPeriod, match="after"):
        resolve_period(date(2026, 3, 2), date(2026, 3, 1), Granularity.DAY, TODAY)
    with pytest.raises(InvalidPeriod, match="at most 366"):
        resolve_period(date(2024, 1, 1), date(2026, 1, 1), Granularity.DAY, TODAY)
    years = resolve_period(date(2024, 1, 1), date(2026, 1, 1), Granularity.WEEK, TODAY)
    assert len(buckets(years)) <= MAX_BUCKETS[Granularity.WEEK]


@pytest.mark.parametrize(
    ("day", "granularity", "start"),
    [
        (date(2026, 12, 3), Granularity.DAY, date(2026, 12, 3)),
        (date(2026, 12, 3), Granularity.WEEK, date(2026, 11, 30)),  # a Thursday; Monday before
        (date(2026, 11, 30), Granularity.WEEK, date(2026, 11, 30)),
        (date(2026, 12, 31), Granularity.MONTH, date(2026, 12, 1)),
    ],
)
def test_buckets_start_where_postgres_date_trunc_cuts(
    day: date, granularity: Granularity, start: date
) -> None:
    assert bucket_start(day, granularity) == start


def test_every_bucket_of_the_range_is_listed_once_in_order() -> None:
    months = buckets(Period(date(2026, 1, 31), date(2026, 4, 1), Granularity.MONTH))
    assert months == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 1)]
    weeks = buckets(Period(date(2026, 12, 1), date(2026, 12, 14), Granularity.WEEK))
    assert weeks == [date(2026, 11, 30), date(2026, 12, 7), date(2026, 12, 14)]


def test_a_prometheus_answer_is_one_number_or_none() -> None:
    vector = {"resultType": "vector", "result": [{"metric": {}, "value": [1, "2.5"]}]}
    assert _scalar(vector) == 2.5
    assert _scalar({"resultType": "vector", "result": []}) is None
    assert _scalar({"resultType": "vector", "result": [{"value": [1, "NaN"]}]}) is None
    assert _scalar({"resultType": "scalar", "result": [1, "4"]}) == 4.0


def test_the_live_figures_read_only_metrics_some_service_exports() -> None:
    exported = exported_names()
    for expr in [*(figure.query for figure in LIVE.values()), TRANSITIONS_BY_STATUS]:
        assert metric_names(expr) <= exported, expr
