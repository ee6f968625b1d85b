"""How the benchmark tables sum up what they measured: percentiles, and refusals by cause."""

from __future__ import annotations

import math
from typing import Any


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile of `values`: the smallest value that at least `pct` percent
    of them do not exceed (of 100 values, p99 is the 99th smallest); NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    # pct * n is exact for the integers and halves used here, so an exact rank is not rounded up.
    rank = math.ceil(pct * len(ordered) / 100)
    return ordered[min(len(ordered), max(1, rank)) - 1]


def problem_cause(status: int, body: Any) -> str:
    """A refused create's status and its problem type's name: "409 holding-limit"."""
    kind = body.get("type") if isinstance(body, dict) else None
    return f"{status} {str(kind).rsplit('/', 1)[-1]}" if kind else str(status)
