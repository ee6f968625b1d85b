"""Analytics on the real pipeline: orders placed through the orders and inventory services,
the analytics service consuming their events, and a real Prometheus scraping all three.

After the orders settle, the reports count them exactly (projection) and carry live rates
(Prometheus); a rebuild from the topics' history, and a second one on top, count nothing twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from devstack.testing import KafkaServer, PostgresServer, RedisServer
from services.analytics.commands import replay
from services.analytics.handlers import EVENT_HANDLERS
from services.analytics.main import create_app
from services.analytics.settings import Settings
from tests.integration.fixtures import fresh_consumer_group
from tests.integration.orders.support import serve
from tests.integration.pipeline.conftest import Platform
from tests.integration.prometheus import PrometheusServer, running_prometheus
from tests.signing import token_env
from tests.support import eventually


@pytest.fixture(scope="module")
def prometheus() -> Iterator[PrometheusServer]:
    with running_prometheus() as server:
        yield server


@pytest.fixture(scope="module")
def analytics_settings(
    platform: Platform,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    kafka_server: KafkaServer,
    prometheus: PrometheusServer,
) -> Settings:
    # Built after the platform's warm-up order: the group starts after it, at the topics' end.
    database = postgres_server.create_database("analytics")
    values: dict[str, Any] = {
        **postgres_server.env(database),
        "APP_ENV": "test",
        **token_env(),
        "REDIS_URL": redis_server.url,
        "KAFKA_BROKER": kafka_server.bootstrap,
        "PROMETHEUS_URL": prometheus.url,
        "KAFKA_CONSUMER_GROUP": fresh_consumer_group(
            kafka_server, "analytics-pipeline", EVENT_HANDLERS
        ),
    }
    return Settings(**values)


@pytest.fixture(scope="module")
async def analytics_url(
    platform: Platform, analytics_settings: Settings, prometheus: PrometheusServer
) -> AsyncIterator[str]:
    async with serve(create_app(analytics_settings)) as url:
        for name, target in (
            ("orders", platform.orders_url),
            ("inventory", platform.inventory_url),
            ("analytics", url),
        ):
            await prometheus.scrape(name, target)
        yield url


async def _report(platform: Platform, url: str, path: str) -> dict[str, Any]:
    today = datetime.now(UTC).date().isoformat()
    response = await platform.http.get(
        f"{url}{path}", params={"from": today, "to": today}, headers=platform.admin.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _projection(settings: Settings, order_ids: list[str]) -> tuple[list[Any], int]:
    with psycopg.connect(
        settings.db_conninfo, row_factory=dict_row, options="-c search_path=analytics"
    ) as conn:
        rows = conn.execute(
            "SELECT order_id, status, version, total, currency, created_at FROM order_facts"
            " WHERE order_id = ANY(%s) ORDER BY order_id",
            (order_ids,),
        ).fetchall()
        events = conn.execute(
            "SELECT count(*) AS n FROM event_log WHERE order_id = ANY(%s)", (order_ids,)
        ).fetchone()
    assert events is not None
    return rows, events["n"]


async def test_reports_count_the_placed_orders_and_carry_live_rates(
    platform: Platform,
    analytics_url: str,
    analytics_settings: Settings,
) -> None:
    product = await platform.product(stock=3, price="10.00")
    user = platform.user()
    placed = [(await platform.place(user, (product, 1))).json()["id"] for _ in range(3)]
    await platform.all_settled(user, placed)
    refused = (await platform.place(user, (product, 1))).json()["id"]  # out of stock now
    await platform.settled(user, refused)
    cancel = await platform.http.post(
        f"{platform.orders_url}/orders/{placed[0]}/cancel",
        json={"reason": "changed my mind"},
        headers=user.headers,
    )
    assert cancel.status_code == 200, cancel.text
    orders = [*placed, refused]

    async def projected() -> dict[str, Any] | None:
        body = await _report(platform, analytics_url, "/analytics/status-distribution")
        counts = {s["status"]: s["orders"] for s in body["statuses"] if s["orders"]}
        return body if counts == {"CONFIRMED": 2, "FAILED": 1, "CANCELLED": 1} else None

    distribution = await eventually(projected, within=30, what="the four orders projected")
    assert distribution["total"] == 4
    revenue = await _report(platform, analytics_url, "/analytics/revenue")
    assert [(c["currency"], c["total"], c["orders"]) for c in revenue["currencies"]] == [
        ("EUR", "20.00", 2)
    ]
    per_day = await _report(platform, analytics_url, "/analytics/orders-per-day")
    assert per_day["points"][0]["orders"] == 4

    async def live() -> dict[str, Any] | None:
        body = await _report(platform, analytics_url, "/analytics/dashboard")
        figures = body["figures"]
        ready = (figures["ordersPerMinute"]["value"] or 0) > 0 and figures[
            "confirmationP95Seconds"
        ]["value"] is not None
        return body if ready else None

    dashboard = await eventually(live, within=30, what="Prometheus to have the order rates")
    assert dashboard["sources"]["prometheus"] == {"available": True, "detail": None}
    assert dashboard["figures"]["ordersPerMinute"]["source"] == "prometheus"
    assert dashboard["figures"]["orders"] == {"value": 4, "unit": "orders", "source": "projection"}
    assert dashboard["figures"]["confirmationP95Seconds"]["value"] > 0
    assert dashboard["figures"]["apiErrorRatio"]["value"] in (0, None)  # None: no 5xx series

    # A rebuild from the topics' history gives these orders back exactly as the live consumer
    # projected them; a second pass on top changes nothing. (The session's topics hold every
    # earlier suite's events too, and new ones may arrive meanwhile, so the checks are on this
    # test's orders and on the replays' own counts.)
    before = _projection(analytics_settings, orders)
    assert before[1] >= 4 + 3 + 1  # four creations, three answers, one cancellation
    rebuilt = await replay(analytics_settings)
    assert rebuilt.applied >= before[1]
    assert _projection(analytics_settings, orders) == before
    again = await replay(analytics_settings, keep=True)
    assert again.applied + again.already_applied >= rebuilt.applied
    assert _projection(analytics_settings, orders) == before
