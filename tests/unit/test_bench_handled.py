"""What each service handled per order: counters read from /metrics, divided, and reported."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench import handled
from devstack.ports import free_port
from devstack.stack import StackConfig

ORDERS_METRICS = """\
# HELP http_requests_total HTTP requests handled.
# TYPE http_requests_total counter
http_requests_total{method="POST",route="/orders",service="orders",status="2xx"} 30.0
http_requests_total{method="POST",route="/orders",service="orders",status="5xx"} 2.0
http_requests_created{method="POST",route="/orders",service="orders",status="2xx"} 1.7e9
# HELP events_consumed_total Events consumed.
# TYPE events_consumed_total counter
events_consumed_total{outcome="processed",service="orders",topic="order.confirmed"} 12.0
# HELP live_pushes_total Socket.IO emits.
# TYPE live_pushes_total counter
live_pushes_total{outcome="published"} 40.0
live_pushes_total{outcome="failed"} 3.0
# HELP orders_transitions_total Transitions.
# TYPE orders_transitions_total counter
orders_transitions_total{actor="owner",status="CREATED"} 99.0
"""


def test_counted_sums_each_kind_over_its_samples_with_the_labels_it_needs() -> None:
    found = handled.counted(ORDERS_METRICS)

    assert found == {
        "requests served": 32.0,  # both statuses, and not the `_created` timestamps
        "events consumed": 12.0,
        "live pushes published": 40.0,  # the failed ones are not
    }


def test_per_order_divides_the_differences_and_gives_the_gateway_the_others_pushes() -> None:
    before = {
        "gateway": {"requests served": 100.0, "upstream requests": 100.0},
        "orders": {"requests served": 100.0, "live pushes published": 200.0},
        "notifications": {"events consumed": 0.0, "live pushes published": 10.0},
        "analytics": {"events consumed": 5.0},
    }
    after = {
        "gateway": {"requests served": 110.0, "upstream requests": 110.0},
        "orders": {"requests served": 110.0, "live pushes published": 220.0},
        "notifications": {"events consumed": 20.0, "live pushes published": 30.0},
        # analytics did not answer the second read: left out, not counted as nothing
    }

    per_order = handled.per_order(before, after, 10)

    assert per_order == {
        "gateway": {
            "requests served": 1.0,
            "upstream requests": 1.0,
            "live pushes relayed": 4.0,
        },
        "orders": {"requests served": 1.0, "live pushes published": 2.0},
        "notifications": {"events consumed": 2.0, "live pushes published": 2.0},
    }


def test_per_order_leaves_out_what_is_negligible_and_is_empty_without_orders() -> None:
    before = {"inventory": {"requests served": 10.0, "events consumed": 0.0}}
    after = {"inventory": {"requests served": 11.0, "events consumed": 1000.0}}

    assert handled.per_order(before, after, 1000) == {"inventory": {"events consumed": 1.0}}
    assert handled.per_order(before, after, 0) == {}


def test_table_divides_each_services_cpu_by_its_items_and_sets_the_sum_beside_the_budget() -> None:
    per_order = {
        "orders": {"requests served": 1.0, "events consumed": 1.0, "live pushes published": 2.0},
        "analytics": {"events consumed": 2.0},
        "gateway": {"live pushes relayed": 2.0},
    }
    cpu = {"orders": 0.8, "analytics": 0.1, "gateway": 0.3, "postgres": 1.0}

    lines = handled.table(400, per_order, cpu)
    text = "\n".join(lines)

    assert "### What each service handled per order (400 orders/s offered)" in text
    header = next(line for line in lines if line.startswith("| service |"))
    assert header == (
        "| service | CPU ms per order | requests served | events consumed | "
        "live pushes published | live pushes relayed | items per order | CPU µs per item |"
    )
    assert "| orders | 0.80 | 1.00 | 1.00 | 2.00 | - | 4.00 | 200 |" in lines
    assert "| gateway | 0.30 | - | - | - | 2.00 | 2.00 | 150 |" in lines
    assert "| analytics | 0.10 | - | 2.00 | - | - | 2.00 | 50 |" in lines
    # rows by CPU per order, the most first; PostgreSQL handled nothing counted here
    assert [line.split(" | ")[0] for line in lines if line.startswith("| ")][1:4] == [
        "| orders",
        "| gateway",
        "| analytics",
    ]
    assert "| **all** | 1.20 | 1.00 | 3.00 | 2.00 | 2.00 | 8.00 | 150 |" in lines
    assert lines[-1] == (
        "At 8.0 items an order, a budget of 1.5 ms of service CPU per order leaves 188 µs for "
        "each; these services spent 150."
    )


def test_table_is_empty_when_nothing_was_counted() -> None:
    assert handled.table(400, {}, {"orders": 1.0}) == []
    assert handled.table(400, {"orders": {}}, {"orders": 1.0}) == []


class Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = ORDERS_METRICS.encode() if self.path == "/metrics" else b""
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def metrics_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_read_asks_each_service_and_worker_an_order_reaches_and_skips_the_silent(
    metrics_port: int, tmp_path: Path
) -> None:
    config = StackConfig(
        run_dir=tmp_path,
        ports={"postgres": free_port()},
        services={"orders": metrics_port, "auth": metrics_port, "analytics": free_port()},
        skipped={},
        workers={"push": metrics_port, "email": metrics_port},
    )

    found = handled.read(config, timeout=2.0)

    # auth and the email worker are not on an order's way; analytics does not answer
    assert set(found) == {"orders", "push-worker"}
    assert found["orders"] == handled.counted(ORDERS_METRICS)
    assert handled.read(None) == {}
