"""Percentiles as the benchmark tables give them."""

from __future__ import annotations


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile of `values`; NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]
