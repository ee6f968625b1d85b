"""The product list from the gateway's memory, against a real inventory on Postgres, Redis, Kafka.

Inventory and the gateway run under uvicorn on free ports and share one Redis, as they do in
the stack. A change made straight at inventory reaches the gateway through the change signal
(pub/sub, or the counter read when a message is lost); one made through the gateway is visible
to the next read at once.
"""

from __future__ import annotations

import gzip
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from devstack.testing import KafkaServer, PostgresServer, RedisServer
from services.gateway.main import create_app as create_gateway
from services.gateway.products import LIST_ROUTE
from services.gateway.settings import DEFAULT_CORS_ORIGINS
from services.gateway.settings import Settings as GatewaySettings
from services.inventory.main import create_app as create_inventory
from services.inventory.settings import Settings as InventorySettings
from services.kit.changes import PRODUCT_CHANGES
from tests.integration.fixtures import schema_connection
from tests.integration.gateway.support import UvicornThread
from tests.signing import token_env
from tests.support import Bearer, bearer, eventually

pytestmark = pytest.mark.integration

CHECK_SECONDS = 0.25
BOUND_SECONDS = 2 * CHECK_SECONDS
# What a read through two uvicorn threads on a shared, loaded machine may add to the bound.
SLACK_SECONDS = 0.75


@pytest.fixture(scope="module")
def database(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database("gateway_products")


@pytest.fixture(scope="module")
def inventory_settings(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    kafka_server: KafkaServer,
    database: str,
) -> InventorySettings:
    values: dict[str, Any] = {
        **postgres_server.env(database),
        **token_env(),
        "APP_ENV": "test",
        "REDIS_URL": redis_server.url,
        "KAFKA_BROKER": kafka_server.bootstrap,
        "SEED_DEMO_CATALOGUE": False,
        "RUN_CONSUMERS": False,
        "RUN_SWEEPER": False,
    }
    return InventorySettings(**values)


@pytest.fixture(scope="module")
def inventory(inventory_settings: InventorySettings) -> Iterator[UvicornThread]:
    with UvicornThread(create_inventory(inventory_settings), proxy_headers=False) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(inventory: UvicornThread, redis_server: RedisServer) -> Iterator[UvicornThread]:
    values: dict[str, Any] = {
        **token_env(),
        "APP_ENV": "test",
        "REDIS_URL": redis_server.url,
        "INVENTORY_SERVICE_URL": inventory.url,
        "PRODUCT_CACHE_CHECK_SECONDS": CHECK_SECONDS,
    }
    with UvicornThread(create_gateway(GatewaySettings(**values))) as server:
        yield server


@pytest.fixture
def admin(inventory_settings: InventorySettings) -> Bearer:
    return bearer(inventory_settings, "ADMIN")


@pytest.fixture
async def client(gateway: UvicornThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        yield http


@pytest.fixture
async def direct(inventory: UvicornThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=inventory.url, timeout=10) as http:
        yield http


async def new_product(http: httpx.AsyncClient, admin: Bearer, price: str = "10.00") -> str:
    sku = f"GW-{uuid.uuid4().hex[:10]}"
    response = await http.post(
        "/inventory/products",
        json={"sku": sku, "name": f"Cached {sku}", "price": price, "currency": "EUR"},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    return sku


async def listed(http: httpx.AsyncClient, sku: str, **headers: str) -> dict[str, Any]:
    """The product with `sku` as the list shows it (queried by its sku)."""
    response = await http.get("/inventory/products", params={"q": sku}, headers=headers)
    assert response.status_code == 200, response.text
    [product] = response.json()["items"]
    assert isinstance(product, dict)
    return product


def inventory_list_requests() -> float:
    labels = {
        "service": "inventory",
        "method": "GET",
        "route": "/inventory/products",
        "status": "2xx",
    }
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


async def fresh_within(
    http: httpx.AsyncClient, sku: str, field: str, expected: Any, since: float
) -> float:
    """Seconds from `since` until the list shows `expected` for the product's `field`."""

    async def shows() -> bool:
        product = await listed(http, sku)
        value = product["stock"] if field == "stock" else product[field]
        return bool(value == expected)

    await eventually(shows, within=BOUND_SECONDS + 10, what=f"{field} {expected}")
    return time.monotonic() - since


async def test_repeated_reads_are_answered_from_memory(
    client: httpx.AsyncClient, direct: httpx.AsyncClient, admin: Bearer
) -> None:
    sku = await new_product(direct, admin)
    assert await listed(client, sku) == await listed(direct, sku)

    async def no_read_reaches_inventory() -> bool:
        before = inventory_list_requests()
        for _ in range(5):
            await listed(client, sku)
        return inventory_list_requests() == before

    # Another suite's inventory on the same Redis may announce changes now and then.
    await eventually(no_read_reaches_inventory, within=10, what="five reads from memory")


async def test_a_matching_etag_is_answered_304_and_gzip_when_accepted(
    client: httpx.AsyncClient, direct: httpx.AsyncClient, admin: Bearer
) -> None:
    sku = await new_product(direct, admin)
    first = await client.get("/inventory/products", params={"q": sku})
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    assert "Authorization" in first.headers["vary"]

    async def revalidated() -> httpx.Response | None:
        again = await client.get(
            "/inventory/products", params={"q": sku}, headers={"If-None-Match": etag}
        )
        # A change elsewhere may have made a new entry: the same JSON keeps its tag.
        return again if again.status_code == 304 else None

    not_modified = await eventually(revalidated, within=10, what="304")
    at_inventory = await direct.get(
        "/inventory/products", params={"q": sku}, headers={"If-None-Match": etag}
    )
    assert (at_inventory.status_code, at_inventory.headers["etag"]) == (304, etag)
    assert not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    other = await client.get(
        "/inventory/products", params={"q": sku}, headers={"If-None-Match": 'W/"other"'}
    )
    assert other.status_code == 200
    assert other.json() == first.json()

    compressed = await client.send(
        client.build_request(
            "GET",
            "/inventory/products",
            params={"q": sku},
            headers={"Accept-Encoding": "gzip"},
        ),
        stream=True,
    )
    raw = b"".join([chunk async for chunk in compressed.aiter_raw()])
    await compressed.aclose()
    assert compressed.headers["content-encoding"] == "gzip"
    assert compressed.headers["etag"] == etag
    assert int(compressed.headers["content-length"]) == len(raw)
    assert gzip.decompress(raw) == first.content
    identity = await client.get(
        "/inventory/products", params={"q": sku}, headers={"Accept-Encoding": "gzip;q=0"}
    )
    assert "content-encoding" not in identity.headers


async def test_a_price_change_at_inventory_is_visible_within_the_bound(
    client: httpx.AsyncClient, direct: httpx.AsyncClient, admin: Bearer
) -> None:
    sku = await new_product(direct, admin, price="10.00")
    product = await listed(client, sku)
    await listed(client, sku)  # from memory now
    response = await direct.patch(
        f"/inventory/products/{product['id']}", json={"price": "11.50"}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    elapsed = await fresh_within(client, sku, "price", "11.50", time.monotonic())
    assert elapsed <= BOUND_SECONDS + SLACK_SECONDS


async def test_a_stock_change_at_inventory_is_visible_within_the_bound(
    client: httpx.AsyncClient, direct: httpx.AsyncClient, admin: Bearer
) -> None:
    sku = await new_product(direct, admin)
    product = await listed(client, sku)
    await listed(client, sku)
    response = await direct.put(
        f"/inventory/stock/{product['id']}",
        json={"onHand": 42, "reason": "cycle count"},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    expected = {"onHand": 42, "reserved": 0, "available": 42}
    elapsed = await fresh_within(client, sku, "stock", expected, time.monotonic())
    assert elapsed <= BOUND_SECONDS + SLACK_SECONDS


async def test_a_change_whose_message_is_lost_is_visible_within_the_bound(
    client: httpx.AsyncClient,
    direct: httpx.AsyncClient,
    admin: Bearer,
    postgres_server: PostgresServer,
    database: str,
    redis_server: RedisServer,
) -> None:
    """A change marked by the counter alone (its message lost) is found by the counter's read."""
    sku = await new_product(direct, admin, price="10.00")
    await listed(client, sku)
    await listed(client, sku)
    with schema_connection(postgres_server, database, "inventory") as conn:
        conn.execute("UPDATE products SET price = 12.25 WHERE sku = %s", (sku,))
    redis = Redis.from_url(redis_server.url)
    try:
        await redis.incr(PRODUCT_CHANGES.key)
    finally:
        await redis.aclose()
    elapsed = await fresh_within(client, sku, "price", "12.25", time.monotonic())
    assert elapsed <= BOUND_SECONDS + SLACK_SECONDS


async def test_a_change_through_the_gateway_is_visible_to_the_next_read(
    client: httpx.AsyncClient, admin: Bearer
) -> None:
    sku = await new_product(client, admin, price="10.00")
    product = await listed(client, sku)
    await listed(client, sku)
    response = await client.patch(
        f"/inventory/products/{product['id']}", json={"price": "13.00"}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert (await listed(client, sku))["price"] == "13.00"


async def test_a_miss_answers_as_inventory_does(
    client: httpx.AsyncClient, direct: httpx.AsyncClient, admin: Bearer
) -> None:
    """A query never asked before, an admin's view, a refused token and a bad parameter."""
    sku = await new_product(direct, admin)
    product = await listed(direct, sku)
    hidden = await direct.patch(
        f"/inventory/products/{product['id']}", json={"active": False}, headers=admin.headers
    )
    assert hidden.status_code == 200, hidden.text
    query = {"q": sku, "limit": "7"}
    public = await client.get("/inventory/products", params=query)
    assert public.json() == {"items": [], "nextCursor": None}
    as_admin = await client.get("/inventory/products", params=query, headers=admin.headers)
    assert (
        as_admin.json()
        == (await direct.get("/inventory/products", params=query, headers=admin.headers)).json()
    )
    assert [item["sku"] for item in as_admin.json()["items"]] == [sku]
    refused = await client.get(
        "/inventory/products", params=query, headers={"Authorization": "Bearer not-a-token"}
    )
    assert refused.status_code == 401
    invalid = await client.get("/inventory/products", params={"limit": "0"})
    assert invalid.status_code == 422
    assert "etag" not in invalid.headers


def gateway_list_requests() -> float:
    labels = {"service": "gateway", "method": "GET", "route": LIST_ROUTE, "status": "2xx"}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


async def test_an_anonymous_hit_answers_as_the_whole_app_does(
    client: httpx.AsyncClient,
    direct: httpx.AsyncClient,
    admin: Bearer,
    inventory_settings: InventorySettings,
) -> None:
    """An anonymous hit is answered before the app's middleware (services/gateway/
    product_hits.py); a customer's request for the same (public) view goes through all of it."""
    sku = await new_product(direct, admin)
    customer = bearer(inventory_settings, "USER")
    query = {"q": sku}
    origin = DEFAULT_CORS_ORIGINS[0]

    async def both_from_one_entry() -> tuple[httpx.Response, httpx.Response] | None:
        anonymous = await client.get("/inventory/products", params=query)
        whole = await client.get("/inventory/products", params=query, headers=customer.headers)
        same = anonymous.headers.get("etag") == whole.headers.get("etag")
        return (anonymous, whole) if same and "etag" in whole.headers else None

    before = gateway_list_requests()
    anonymous, whole = await eventually(both_from_one_entry, within=10, what="two hits")
    assert gateway_list_requests() >= before + 2

    def comparable(response: httpx.Response) -> dict[str, str]:
        return {k: v for k, v in response.headers.items() if k not in ("date", "x-request-id")}

    assert comparable(anonymous) == comparable(whole)
    assert anonymous.content == whole.content
    assert anonymous.headers["x-request-id"] != whole.headers["x-request-id"]
    echoed = await client.get(
        "/inventory/products", params=query, headers={"X-Request-ID": "hit-request-1"}
    )
    assert echoed.headers["x-request-id"] == "hit-request-1"
    cross_origin = await client.get("/inventory/products", params=query, headers={"Origin": origin})
    assert cross_origin.headers["access-control-allow-origin"] == origin
    assert cross_origin.content == whole.content
