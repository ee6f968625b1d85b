"""The benchmark tables' percentiles are nearest-rank; refusals are named by their cause."""

from __future__ import annotations

import math

import pytest

from bench.stats import percentile, problem_cause


@pytest.mark.parametrize(
    ("count", "pct", "rank"),
    [(100, 99, 99), (300, 99, 297), (20, 99, 20), (4, 50, 2), (3, 50, 2), (1, 99, 1), (7, 0, 1)],
)
def test_a_percentile_is_the_value_at_its_nearest_rank(count: int, pct: float, rank: int) -> None:
    values = [float(v) for v in range(count, 0, -1)]  # unsorted: the ranks are the values

    assert percentile(values, pct) == rank


def test_one_outlier_in_a_hundred_is_above_the_p99() -> None:
    assert percentile([10.0] * 99 + [500.0], 99) == 10.0
    assert percentile([10.0] * 98 + [500.0] * 2, 99) == 500.0


def test_no_values_have_no_percentile() -> None:
    assert math.isnan(percentile([], 99))


def test_a_refusal_is_named_by_its_status_and_the_last_part_of_its_problem_type() -> None:
    body = {"type": "https://realtimeorder.io/problems/pipeline-backlogged"}
    assert problem_cause(503, body) == "503 pipeline-backlogged"
    assert problem_cause(502, "Bad Gateway") == "502"
