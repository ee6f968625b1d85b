"""Percentiles as the benchmark tables give them."""

from __future__ import annotations

import math


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile of `values`: the smallest value that at least `pct` percent
    of them do not exceed (of 100 values, p99 is the 99th smallest); NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    # pct * n is exact for the integers and halves used here, so an exact rank is not rounded up.
    rank = math.ceil(pct * len(ordered) / 100)
    return ordered[min(len(ordered), max(1, rank)) - 1]
