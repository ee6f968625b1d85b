from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from realtimeorder_operator.scaling import (
    PartitionOffsets,
    Recommendation,
    ScalingPolicy,
    consumer_group_lag,
    decide,
    partition_lag,
    recommend_replicas,
    remember,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = ScalingPolicy(
    min_replicas=1, max_replicas=10, cooldown_seconds=60, stabilization_seconds=120
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("metric", "per_replica", "cap", "expected"),
    [
        (0, 100, None, 1),  # clamped up to minReplicas
        (1, 100, None, 1),
        (100, 100, None, 1),
        (101, 100, None, 2),  # ceil, not round
        (950, 100, None, 10),
        (5000, 100, None, 10),  # clamped to maxReplicas
        (950, 100, 3, 3),  # no more consumers than partitions
        (-5, 100, None, 1),
    ],
)
def test_recommendation_is_ceil_of_metric_per_replica_capped_and_clamped(
    metric: int, per_replica: int, cap: int | None, expected: int
) -> None:
    assert (
        recommend_replicas(metric, per_replica, min_replicas=1, max_replicas=10, partition_cap=cap)
        == expected
    )


def test_recommendation_can_reach_zero_when_min_is_zero() -> None:
    assert recommend_replicas(0, 10, min_replicas=0, max_replicas=5) == 0


def test_lag_of_committed_partition_is_end_minus_committed() -> None:
    assert (
        partition_lag(PartitionOffsets(0, committed=40, log_start=0, log_end=100), "earliest") == 60
    )


def test_lag_ignores_messages_deleted_by_retention() -> None:
    offsets = PartitionOffsets(0, committed=10, log_start=50, log_end=100)
    assert partition_lag(offsets, "earliest") == 50


def test_uncommitted_partition_counts_retained_log_under_earliest_and_nothing_under_latest() -> (
    None
):
    offsets = [
        PartitionOffsets(0, committed=None, log_start=20, log_end=120),
        PartitionOffsets(1, committed=5, log_start=0, log_end=10),
    ]
    assert consumer_group_lag(offsets, "earliest") == 105
    assert consumer_group_lag(offsets, "latest") == 5


def decide_at(
    seconds: float,
    *,
    recommended: int,
    current: int,
    last_scale: float = 0,
    history: tuple[Recommendation, ...] = (),
    policy: ScalingPolicy = POLICY,
) -> tuple[int, str, tuple[Recommendation, ...]]:
    decision = decide(
        policy,
        recommended=recommended,
        current=current,
        now=at(seconds),
        last_scale=at(last_scale),
        history=history,
    )
    return decision.replicas, decision.reason, decision.recommendations


def test_scales_up_at_once_even_inside_the_cooldown() -> None:
    replicas, reason, _ = decide_at(1, recommended=6, current=2, last_scale=0)
    assert (replicas, reason) == (6, "ScaledUp")


def test_does_not_scale_down_inside_the_cooldown() -> None:
    replicas, reason, _ = decide_at(30, recommended=1, current=5, last_scale=0)
    assert (replicas, reason) == (5, "CooldownActive")


def test_scales_down_after_the_cooldown_to_the_window_maximum() -> None:
    history = (Recommendation(at(10), 4), Recommendation(at(50), 2))
    replicas, reason, _ = decide_at(70, recommended=1, current=5, history=history)
    assert (replicas, reason) == (4, "ScaledDown")


def test_old_recommendations_leave_the_window() -> None:
    history = (Recommendation(at(10), 4), Recommendation(at(50), 2))
    # At 200 s the 120 s window starts at 80 s: both are gone, the latest alone counts.
    replicas, reason, kept = decide_at(200, recommended=1, current=5, history=history)
    assert (replicas, reason) == (1, "ScaledDown")
    assert kept == (Recommendation(at(200), 1),)


def test_a_peak_in_the_window_keeps_the_current_count() -> None:
    history = (Recommendation(at(100), 5),)
    replicas, reason, _ = decide_at(130, recommended=1, current=5, history=history)
    assert (replicas, reason) == (5, "Stabilizing")


def test_stable_when_recommendation_matches() -> None:
    replicas, reason, _ = decide_at(500, recommended=3, current=3)
    assert (replicas, reason) == (3, "Stable")


def test_bounds_are_enforced_at_once() -> None:
    assert decide_at(1, recommended=1, current=0)[:2] == (1, "ScaledUp")
    assert decide_at(1, recommended=10, current=15)[:2] == (10, "ScaledDown")


def test_flapping_load_does_not_flap_replicas() -> None:
    """Load alternating high/low every tick: after scaling up, the Deployment stays up."""
    history: tuple[Recommendation, ...] = ()
    current, last_scale = 1, 0.0
    replicas_seen = []
    for tick in range(1, 40):
        recommended = 6 if tick % 2 else 1
        decision = decide(
            POLICY,
            recommended=recommended,
            current=current,
            now=at(tick * 15),
            last_scale=at(last_scale),
            history=history,
        )
        if decision.scales(current):
            current, last_scale = decision.replicas, tick * 15
        history = decision.recommendations
        replicas_seen.append(current)
    assert replicas_seen[0] == 6
    assert set(replicas_seen) == {6}


def test_remembered_recommendations_stay_short() -> None:
    history: tuple[Recommendation, ...] = ()
    for second in range(1000):
        history = remember(history, Recommendation(at(second), 10 - second % 10), 3600)
    assert len(history) <= 10
    assert max(r.replicas for r in history) == 10
