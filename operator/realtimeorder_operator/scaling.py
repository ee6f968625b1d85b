"""Replica decisions for WorkerAutoscaler, as pure functions (KEDA's semantics, HPA's damping).

- The metric gives a raw recommendation: ceil(metric / per-replica target), capped at the
  topic's partition count for Kafka lag (a consumer beyond the partition count would idle),
  then clamped to [minReplicas, maxReplicas].
- Scaling up happens at once: a backlog is what the workers are for.
- Scaling down waits for the cooldown since the last scale (or since the autoscaler was created,
  so a fresh autoscaler does not shrink a busy Deployment on its first look) and then goes only
  to the highest recommendation seen within the stabilisation window, so a short dip in load
  neither flaps the Deployment nor removes workers that still hold messages.

Kafka partitions without a committed offset count as their whole retained log under the
`earliest` policy (the platform's consumers start there, so that backlog is real work) and as
nothing under `latest`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

OffsetResetPolicy = Literal["earliest", "latest"]


@dataclass(frozen=True)
class PartitionOffsets:
    partition: int
    committed: int | None  # None: the group has no committed offset for this partition
    log_start: int
    log_end: int


def partition_lag(offsets: PartitionOffsets, reset: OffsetResetPolicy) -> int:
    if offsets.committed is None:
        return max(offsets.log_end - offsets.log_start, 0) if reset == "earliest" else 0
    # Retention may have deleted messages the group never read: they are no longer work.
    return max(offsets.log_end - max(offsets.committed, offsets.log_start), 0)


def consumer_group_lag(offsets: Iterable[PartitionOffsets], reset: OffsetResetPolicy) -> int:
    return sum(partition_lag(p, reset) for p in offsets)


def recommend_replicas(
    metric: int,
    per_replica: int,
    *,
    min_replicas: int,
    max_replicas: int,
    partition_cap: int | None = None,
) -> int:
    wanted = math.ceil(max(metric, 0) / per_replica)
    if partition_cap is not None:
        wanted = min(wanted, partition_cap)
    return max(min_replicas, min(wanted, max_replicas))


@dataclass(frozen=True)
class Recommendation:
    at: datetime
    replicas: int


@dataclass(frozen=True)
class ScalingPolicy:
    min_replicas: int
    max_replicas: int
    cooldown_seconds: int
    stabilization_seconds: int


@dataclass(frozen=True)
class ScalingDecision:
    replicas: int  # what the target should have now (== current when nothing changes)
    reason: Literal["ScaledUp", "ScaledDown", "Stable", "CooldownActive", "Stabilizing"]
    recommendations: tuple[Recommendation, ...]  # what to remember for the next decision

    def scales(self, current: int) -> bool:
        return self.replicas != current


def remember(
    history: Sequence[Recommendation], latest: Recommendation, window_seconds: int
) -> tuple[Recommendation, ...]:
    """The recommendations that can still be the window's maximum, oldest first.

    An older entry not above a newer one can never be the maximum again, so only a strictly
    decreasing run survives: the stored list stays a handful long at any timer interval.
    """
    horizon = latest.at - timedelta(seconds=window_seconds)
    kept = [r for r in history if horizon <= r.at <= latest.at]
    while kept and kept[-1].replicas <= latest.replicas:
        kept.pop()
    return (*kept, latest)


def decide(
    policy: ScalingPolicy,
    *,
    recommended: int,
    current: int,
    now: datetime,
    last_scale: datetime,
    history: Sequence[Recommendation],
) -> ScalingDecision:
    """The replica count to set now, given the latest recommendation and what came before."""
    recommendations = remember(
        history, Recommendation(now, recommended), policy.stabilization_seconds
    )
    if current < policy.min_replicas or recommended > current:
        return ScalingDecision(max(recommended, policy.min_replicas), "ScaledUp", recommendations)
    if current > policy.max_replicas:
        return ScalingDecision(policy.max_replicas, "ScaledDown", recommendations)
    if recommended == current:
        return ScalingDecision(current, "Stable", recommendations)
    if now - last_scale < timedelta(seconds=policy.cooldown_seconds):
        return ScalingDecision(current, "CooldownActive", recommendations)
    stabilized = max(r.replicas for r in recommendations)
    if stabilized >= current:
        return ScalingDecision(current, "Stabilizing", recommendations)
    return ScalingDecision(stabilized, "ScaledDown", recommendations)
