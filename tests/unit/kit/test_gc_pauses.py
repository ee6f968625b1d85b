import gc

from prometheus_client import REGISTRY

from services.kit.metrics import time_gc_pauses


def _timed(generation: int) -> float:
    value = REGISTRY.get_sample_value(
        "python_gc_pause_seconds_count", {"generation": str(generation)}
    )
    return value or 0.0


def test_each_collection_is_timed_once_by_its_generation() -> None:
    time_gc_pauses()
    time_gc_pauses()  # a second app in the process adds no second timer
    gc.collect()  # from here on too few allocations for a collection of their own
    before = [_timed(generation) for generation in range(3)]

    gc.collect(2)
    gc.collect(1)

    assert _timed(2) == before[2] + 1
    assert _timed(1) == before[1] + 1
    total = REGISTRY.get_sample_value("python_gc_pause_seconds_sum", {"generation": "2"})
    assert total is not None
    assert total > 0
