import gc

from prometheus_client import REGISTRY

from services.kit.metrics import time_gc_pauses


def _timed(generation: int) -> float:
    value = REGISTRY.get_sample_value(
        "python_gc_pause_seconds_count", {"generation": str(generation)}
    )
    return value or 0.0


def test_collections_are_timed_by_generation_with_one_timer_per_process() -> None:
    time_gc_pauses()
    time_gc_pauses()  # a second app in the process adds no second timer
    timers = [c for c in gc.callbacks if type(c).__name__ == "_GcTimer"]
    before = [_timed(generation) for generation in range(3)]

    gc.collect(2)
    gc.collect(1)

    assert len(timers) == 1
    # Other threads of the process may collect meanwhile: at least ours are counted.
    assert _timed(2) >= before[2] + 1
    assert _timed(1) >= before[1] + 1
    total = REGISTRY.get_sample_value("python_gc_pause_seconds_sum", {"generation": "2"})
    assert total is not None
    assert total > 0
