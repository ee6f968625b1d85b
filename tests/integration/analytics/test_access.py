"""Who may read analytics, and what bad parameters get: 401, 403 and 422 problem+json."""

from __future__ import annotations

import httpx
import pytest

from tests.support import Bearer

PATHS = (
    "/analytics/dashboard",
    "/analytics/orders-per-day",
    "/analytics/revenue",
    "/analytics/status-distribution",
    "/analytics/events",
    "/analytics/kafka",
    "/analytics/queues",
)


@pytest.mark.parametrize("path", PATHS)
async def test_only_admins_read_analytics(
    client: httpx.AsyncClient, user: Bearer, path: str
) -> None:
    anonymous = await client.get(path)
    assert anonymous.status_code == 401
    customer = await client.get(path, headers=user.headers)
    assert customer.status_code == 403
    assert customer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "params", "names"),
    [
        ("/analytics/orders-per-day", {"from": "2026-03-10", "to": "2026-03-01"}, "after"),
        ("/analytics/revenue", {"from": "2020-01-01", "to": "2026-01-01"}, "at most 366"),
        ("/analytics/revenue", {"granularity": "hour"}, "granularity"),
        ("/analytics/dashboard", {"from": "yesterday"}, "from"),
        ("/analytics/status-distribution", {"to": "2026-02-30"}, "to"),
        ("/analytics/events", {"limit": "0"}, "limit"),
        ("/analytics/events", {"limit": "100000"}, "limit"),
        ("/analytics/events", {"cursor": "not-a-cursor"}, "cursor"),
        ("/analytics/events", {"from": "soon"}, "from"),
        ("/analytics/events", {"orderId": "x" * 65}, "orderId"),
    ],
)
async def test_bad_parameters_get_a_422_that_says_why(
    client: httpx.AsyncClient, admin: Bearer, path: str, params: dict[str, str], names: str
) -> None:
    response = await client.get(path, params=params, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert names in response.text


async def test_a_long_range_fits_at_a_coarser_granularity(
    client: httpx.AsyncClient, admin: Bearer
) -> None:
    params = {"from": "2020-01-01", "to": "2026-01-01", "granularity": "month"}
    response = await client.get("/analytics/revenue", params=params, headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.json()["currencies"] == []
