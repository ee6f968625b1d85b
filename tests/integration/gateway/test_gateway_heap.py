"""A service freezes the survivors of full collections while it runs (services/kit/heap.py)
and gives them back to the collector when it stops; the gateway's closed connections count
towards the thaw."""

from __future__ import annotations

import gc

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.testing import RedisServer
from services.gateway.main import create_app
from tests.integration.gateway.support import UvicornThread, closed_port, gateway_settings

pytestmark = pytest.mark.integration


def _samples(base: str) -> dict[tuple[str, str], float]:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return {
        (sample.name, sample.labels.get("job", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_survivors_are_frozen_while_the_gateway_runs(redis_server: RedisServer) -> None:
    settings = gateway_settings(redis_server.url, f"http://127.0.0.1:{closed_port()}")
    with UvicornThread(create_app(settings)) as server:
        gc.collect()
        frozen = gc.get_freeze_count()
        samples = _samples(server.url)
        assert frozen > 0
        assert samples[("python_gc_frozen_objects", "")] > 0
    assert gc.get_freeze_count() == 0, "thawed when the gateway stopped"


def test_nothing_is_frozen_with_gc_thaw_seconds_0(redis_server: RedisServer) -> None:
    settings = gateway_settings(
        redis_server.url, f"http://127.0.0.1:{closed_port()}", GC_THAW_SECONDS=0
    )
    with UvicornThread(create_app(settings)) as server:
        gc.collect()
        assert gc.get_freeze_count() == 0
        assert _samples(server.url)[("python_gc_frozen_objects", "")] == 0
