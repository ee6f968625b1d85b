"""A service freezes the survivors of full collections while it runs (services/kit/heap.py)
and gives them back to the collector when it stops; the gateway's closed connections count
towards the thaw.

The collector is the test process's: other apps served in it may freeze too, so the checks
are of this app's own `FrozenSurvivors` and of what it did."""

from __future__ import annotations

import gc

import pytest

from devstack.testing import RedisServer
from services.gateway.main import create_app
from services.kit.heap import MIN_CLOSED_TO_THAW, FrozenSurvivors
from tests.integration.gateway.support import (
    UvicornThread,
    closed_port,
    gateway_settings,
    metric_value,
)

pytestmark = pytest.mark.integration


def _installed(survivors: FrozenSurvivors) -> bool:
    return any(getattr(callback, "__self__", None) is survivors for callback in gc.callbacks)


def test_survivors_are_frozen_while_the_gateway_runs_and_closed_sockets_thaw_them(
    redis_server: RedisServer,
) -> None:
    settings = gateway_settings(redis_server.url, f"http://127.0.0.1:{closed_port()}")
    app = create_app(settings)
    with UvicornThread(app) as server:
        survivors: FrozenSurvivors = app.state.frozen_survivors
        assert _installed(survivors)
        gc.collect()
        assert gc.get_freeze_count() > 0
        assert metric_value(server.url, "python_gc_frozen_objects") > 0

        thaws = metric_value(server.url, "python_gc_thaws_total")
        assert not survivors.due()
        app.state.socket_sessions.closed += MIN_CLOSED_TO_THAW  # as if that many closed
        assert survivors.due(), "the gateway's closed connections count"
        gc.collect()
        assert metric_value(server.url, "python_gc_thaws_total") >= thaws + 1
        assert not survivors.due()
    assert not _installed(survivors), "uninstalled when the gateway stopped"


def test_nothing_is_frozen_with_gc_thaw_seconds_0(redis_server: RedisServer) -> None:
    settings = gateway_settings(
        redis_server.url, f"http://127.0.0.1:{closed_port()}", GC_THAW_SECONDS=0
    )
    app = create_app(settings)
    with UvicornThread(app):
        assert app.state.frozen_survivors is None
