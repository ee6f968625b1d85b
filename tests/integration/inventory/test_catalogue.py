"""The catalogue and stock API on real Postgres and Redis: who may change what, filters,
pagination, the cache and its invalidation, audited stock."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jwt
import pytest
from prometheus_client import REGISTRY

from services.inventory.demo import DEMO_CATALOGUE, seed_demo_catalogue
from services.inventory.main import create_app
from services.inventory.service import InventoryService
from services.inventory.settings import Settings
from services.kit.consumer import EventShell
from services.kit.order_events import ORDER_CREATED
from tests.integration.inventory.support import (
    apply_event,
    create_product,
    order_created,
)
from tests.support import Bearer, eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


def cache_count(result: str) -> float:
    value = REGISTRY.get_sample_value("inventory_product_cache_requests_total", {"result": result})
    return value or 0.0


async def listed(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/inventory/products", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_the_demo_catalogue_is_seeded_once(
    client: httpx.AsyncClient, service: InventoryService
) -> None:
    demo = await listed(client, q="demo-", limit=100)
    assert sorted(p["sku"] for p in demo) == sorted(p.sku for p in DEMO_CATALOGUE)
    assert all(p["active"] and p["stock"]["available"] > 0 for p in demo)
    assert await seed_demo_catalogue(service.pool) == 0
    assert len(await listed(client, q="demo-", limit=100)) == len(DEMO_CATALOGUE)


async def test_a_restart_applies_nothing_twice(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    before = await listed(client, q="demo-", limit=100)
    quiet = settings.model_copy(
        update={"run_consumers": False, "run_relay": False, "run_sweeper": False}
    )
    second = create_app(quiet)
    async with second.router.lifespan_context(second):
        transport = httpx.ASGITransport(app=second)
        async with httpx.AsyncClient(transport=transport, base_url="http://second") as other:
            assert await listed(other, q="demo-", limit=100) == before


async def test_an_admin_creates_a_product(client: httpx.AsyncClient, admin: Bearer) -> None:
    sku = f"MUG-{uuid.uuid4().hex[:8]}"
    response = await client.post(
        "/inventory/products",
        json={
            "sku": sku,
            "name": "Blue mug",
            "description": "Enamel",
            "price": "12.5",
            "currency": "eur",
            "imageUrl": "https://img.example/mug.png",
            "initialStock": 7,
        },
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    product = response.json()
    assert response.headers["location"] == f"/inventory/products/{product['id']}"
    assert response.headers["etag"] == '"1"'
    assert product | {"id": None, "createdAt": None, "updatedAt": None} == {
        "id": None,
        "sku": sku,
        "name": "Blue mug",
        "description": "Enamel",
        "price": "12.50",
        "currency": "EUR",
        "imageUrl": "https://img.example/mug.png",
        "active": True,
        "version": 1,
        "createdAt": None,
        "updatedAt": None,
        "stock": {"onHand": 7, "reserved": 0, "available": 7},
    }
    fetched = await client.get(f"/inventory/products/{product['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == product
    stock = (await client.get(f"/inventory/stock/{product['id']}")).json()
    assert (stock["onHand"], stock["reserved"], stock["available"]) == (7, 0, 7)
    audit = await client.get(f"/inventory/stock/{product['id']}/adjustments", headers=admin.headers)
    [entry] = audit.json()["items"]
    assert (entry["oldOnHand"], entry["newOnHand"], entry["reason"]) == (0, 7, "initial stock")
    assert entry["actorId"] == admin.principal.user_id


async def test_a_duplicate_sku_is_a_conflict(client: httpx.AsyncClient, admin: Bearer) -> None:
    product = await create_product(client, admin)
    again = await client.post(
        "/inventory/products",
        json={"sku": product["sku"], "name": "Other", "price": "1", "currency": "USD"},
        headers=admin.headers,
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["sku"] == product["sku"]


async def test_only_admins_change_the_catalogue(
    client: httpx.AsyncClient, admin: Bearer, user: Bearer, settings: Settings
) -> None:
    product = await create_product(client, admin)
    body = {"sku": f"X-{uuid.uuid4().hex[:8]}", "name": "X", "price": "1", "currency": "USD"}
    forged = {"X-Bearer-Role": "ADMIN", "X-Bearer-Id": admin.principal.user_id}
    other_secret = jwt.encode(
        {"sub": "x", "role": "ADMIN", "typ": "access", "iss": settings.jwt_issuer,
         "iat": 1, "exp": 4_000_000_000},
        "another-secret-that-is-long-enough-0123456789",
        algorithm="HS256",
    )  # fmt: skip
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/inventory/products", body),
        ("PATCH", f"/inventory/products/{product['id']}", {"name": "Hacked"}),
        ("PUT", f"/inventory/stock/{product['id']}", {"onHand": 999, "reason": "hack"}),
    ]
    for method, path, payload in attempts:
        for headers, status in (
            ({}, 401),
            (forged, 401),
            ({"Authorization": "Bearer not-a-token"}, 401),
            ({"Authorization": f"Bearer {other_secret}"}, 401),
            (user.headers, 403),
            (user.headers | forged, 403),
        ):
            response = await client.request(method, path, json=payload, headers=headers)
            assert response.status_code == status, (method, path, headers, response.text)
    unchanged = (await client.get(f"/inventory/products/{product['id']}")).json()
    assert unchanged == product
    audit = await client.get(f"/inventory/stock/{product['id']}/adjustments", headers=user.headers)
    assert audit.status_code == 403


async def test_a_public_read_with_a_bad_token_is_refused(client: httpx.AsyncClient) -> None:
    anonymous = await client.get("/inventory/products")
    assert anonymous.status_code == 200
    bad = await client.get("/inventory/products", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


@pytest.mark.parametrize(
    "change",
    [
        {"price": "-1"},
        {"price": "1.234"},
        {"currency": "EURO"},
        {"sku": "has spaces"},
        {"initialStock": -5},
        {"imageUrl": "ftp://x"},
        {"unexpected": True},
    ],
)
async def test_invalid_products_are_refused(
    client: httpx.AsyncClient, admin: Bearer, change: dict[str, Any]
) -> None:
    body = {"sku": f"V-{uuid.uuid4().hex[:8]}", "name": "V", "price": "1", "currency": "USD"}
    response = await client.post("/inventory/products", json=body | change, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"]


async def test_a_patch_changes_what_it_names_and_bumps_the_version(
    client: httpx.AsyncClient, admin: Bearer
) -> None:
    product = await create_product(client, admin, name="Lamp", price="30.00")
    path = f"/inventory/products/{product['id']}"
    changed = await client.patch(
        path, json={"price": "27.5", "imageUrl": "https://img/x.png"}, headers=admin.headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["etag"] == '"2"'
    body = changed.json()
    assert (body["name"], body["price"], body["imageUrl"], body["version"]) == (
        "Lamp",
        "27.50",
        "https://img/x.png",
        2,
    )
    same = await client.patch(path, json={"price": "27.50"}, headers=admin.headers)
    assert same.json()["version"] == 2, "a patch that changes nothing keeps the version"

    stale_header = await client.patch(
        path, json={"name": "Lamp 2"}, headers=admin.headers | {"If-Match": '"1"'}
    )
    assert stale_header.status_code == 412
    stale_body = await client.patch(
        path, json={"name": "Lamp 2", "version": 1}, headers=admin.headers
    )
    assert stale_body.status_code == 409
    assert stale_body.json()["currentVersion"] == 2
    current = await client.patch(
        path, json={"name": "Lamp 2", "imageUrl": None}, headers=admin.headers | {"If-Match": '"2"'}
    )
    assert current.status_code == 200
    assert (current.json()["name"], current.json()["imageUrl"], current.json()["version"]) == (
        "Lamp 2",
        None,
        3,
    )

    other = await create_product(client, admin)
    taken = await client.patch(path, json={"sku": other["sku"]}, headers=admin.headers)
    assert taken.status_code == 409
    missing = await client.patch(
        f"/inventory/products/{uuid.uuid4()}", json={"name": "x"}, headers=admin.headers
    )
    assert missing.status_code == 404
    nulled = await client.patch(path, json={"name": None}, headers=admin.headers)
    assert nulled.status_code == 422


async def test_a_deactivated_product_leaves_the_public_list(
    client: httpx.AsyncClient, admin: Bearer, user: Bearer
) -> None:
    tag = uuid.uuid4().hex[:10]
    product = await create_product(client, admin, name=f"Retired {tag}")
    assert [p["id"] for p in await listed(client, q=tag)] == [product["id"]]
    response = await client.patch(
        f"/inventory/products/{product['id']}", json={"active": False}, headers=admin.headers
    )
    assert response.json()["active"] is False

    assert await listed(client, q=tag) == []
    user_view = await client.get("/inventory/products", params={"q": tag}, headers=user.headers)
    assert user_view.json()["items"] == []
    admin_view = await client.get("/inventory/products", params={"q": tag}, headers=admin.headers)
    assert [(p["id"], p["active"]) for p in admin_view.json()["items"]] == [(product["id"], False)]
    looked_up = await listed(client, ids=product["id"])
    assert [(p["id"], p["active"]) for p in looked_up] == [(product["id"], False)]
    by_id = await client.get(f"/inventory/products/{product['id']}", headers=admin.headers)
    assert by_id.json()["active"] is False


async def test_only_admins_see_deactivated_products_whatever_the_query(
    client: httpx.AsyncClient, admin: Bearer, user: Bearer
) -> None:
    tag = uuid.uuid4().hex[:10]
    product = await create_product(client, admin, name=f"Hidden {tag}")
    path = f"/inventory/products/{product['id']}"
    await client.patch(path, json={"active": False}, headers=admin.headers)
    retired = [(product["id"], False)]

    # The admin asks first, so a view served from the admin's cache entry would show it.
    for params in ({"q": tag, "active": "false"}, {"q": tag}):
        admin_view = await client.get("/inventory/products", params=params, headers=admin.headers)
        assert [(p["id"], p["active"]) for p in admin_view.json()["items"]] == retired
        assert await listed(client, **params) == []
        user_view = await client.get("/inventory/products", params=params, headers=user.headers)
        assert user_view.json()["items"] == []

    assert (await client.get(path)).status_code == 404
    assert (await client.get(path, headers=user.headers)).status_code == 404
    assert (await client.get(path, headers=admin.headers)).json()["active"] is False
    # The orders service prices orders by id without a token and must learn it is retired.
    looked_up = await listed(client, ids=product["id"])
    assert [(p["id"], p["active"]) for p in looked_up] == retired


async def test_filters_by_text_currency_and_price(client: httpx.AsyncClient, admin: Bearer) -> None:
    tag = uuid.uuid4().hex[:10]
    cheap = await create_product(client, admin, name=f"Cheap {tag}", price="5.00")
    mid = await create_product(client, admin, name=f"Mid {tag}", price="10.00")
    dear = await create_product(client, admin, name=f"Dear {tag}", price="20.00")
    euro = await create_product(client, admin, name=f"Euro {tag}", price="10.00", currency="EUR")
    sku_only = await create_product(
        client, admin, name="Plain", sku=f"SKU_{tag.upper()}", price="1.00"
    )

    def ids(items: list[dict[str, Any]]) -> set[str]:
        return {item["id"] for item in items}

    assert ids(await listed(client, q=tag.upper())) == {
        cheap["id"], mid["id"], dear["id"], euro["id"], sku_only["id"],
    }  # fmt: skip
    assert ids(await listed(client, q=f"sku_{tag}")) == {sku_only["id"]}
    assert ids(await listed(client, q=f"  mid   {tag} ")) == {mid["id"]}
    assert ids(await listed(client, q=tag, currency="eur")) == {euro["id"]}
    assert ids(await listed(client, q=tag, currency="USD", minPrice="5", maxPrice="10")) == {
        cheap["id"],
        mid["id"],
    }
    assert ids(await listed(client, q=tag, minPrice="10.01")) == {dear["id"]}
    assert ids(await listed(client, q="%")) == set(), "LIKE wildcards are matched literally"
    refused = await client.get("/inventory/products", params={"minPrice": "10", "maxPrice": "5"})
    assert refused.status_code == 422


async def test_pages_walk_every_product_once_in_name_order(
    client: httpx.AsyncClient, admin: Bearer
) -> None:
    tag = uuid.uuid4().hex[:10]
    created = [
        await create_product(client, admin, name=f"{tag} item {n}") for n in (5, 3, 1, 6, 2, 4, 0)
    ]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"q": tag, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/inventory/products", params=params)).json()
        seen += [item["name"] for item in page["items"]]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(p["name"] for p in created)
    bad = await client.get("/inventory/products", params={"cursor": "garbage"})
    assert bad.status_code == 422
    too_many = await client.get("/inventory/products", params={"limit": 101})
    assert too_many.status_code == 422


async def test_a_batch_lookup_by_ids(client: httpx.AsyncClient, admin: Bearer) -> None:
    first = await create_product(client, admin, name="Alpha lookup")
    second = await create_product(client, admin, name="Beta lookup")
    found = await listed(
        client, ids=f"{second['id']},{uuid.uuid4()},{first['id'].upper()}", limit=1
    )
    assert [p["id"] for p in found] == [first["id"], second["id"]]
    response = await client.get("/inventory/products", params={"ids": first["id"]})
    assert response.json()["nextCursor"] is None
    too_many = ",".join(str(uuid.uuid4()) for _ in range(101))
    assert (await client.get("/inventory/products", params={"ids": too_many})).status_code == 422
    bad = await client.get("/inventory/products", params={"ids": f"{first['id']},nope"})
    assert bad.status_code == 422


async def test_the_list_is_cached_and_every_change_is_visible_at_once_or_paced(
    client: httpx.AsyncClient, admin: Bearer, db: Any, shell: EventShell[InventoryService]
) -> None:
    tag = uuid.uuid4().hex[:10]
    product = await create_product(client, admin, name=f"Cached {tag}", stock=10)

    hits = cache_count("hit")
    first = await listed(client, q=tag)
    second = await listed(client, q=f"  {tag.upper()} ")
    assert first == second
    assert cache_count("hit") == hits + 1

    # Changed behind the service's back: the cached page is still what is served.
    db.execute("UPDATE products SET description = 'edited in SQL' WHERE id = %s", (product["id"],))
    assert (await listed(client, q=tag))[0]["description"] == ""

    await client.patch(
        f"/inventory/products/{product['id']}", json={"price": "11.00"}, headers=admin.headers
    )
    after_patch = (await listed(client, q=tag))[0]
    assert (after_patch["price"], after_patch["description"]) == ("11.00", "edited in SQL")

    await client.put(
        f"/inventory/stock/{product['id']}",
        json={"onHand": 4, "reason": "breakage"},
        headers=admin.headers,
    )
    assert (await listed(client, q=tag))[0]["stock"]["available"] == 4

    # The order flow's stock changes are paced: visible within PRODUCT_STOCK_MARK_SECONDS.
    created = order_created([(product["id"], 3)])
    assert await apply_event(shell, ORDER_CREATED, created) == "confirmed"

    async def reserved_listed() -> bool:
        stock = (await listed(client, q=tag))[0]["stock"]
        return bool(stock == {"onHand": 4, "reserved": 3, "available": 1})

    await eventually(reserved_listed, within=2, what="the reservation in the list")


async def test_setting_stock_is_audited(client: httpx.AsyncClient, admin: Bearer) -> None:
    product = await create_product(client, admin, stock=10)
    response = await client.put(
        f"/inventory/stock/{product['id']}",
        json={"onHand": 25, "reason": "delivery from supplier"},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    assert {k: response.json()[k] for k in ("onHand", "reserved", "available")} == {
        "onHand": 25,
        "reserved": 0,
        "available": 25,
    }
    await client.put(
        f"/inventory/stock/{product['id']}",
        json={"onHand": 24, "reason": "cycle count"},
        headers=admin.headers,
    )
    audit = (
        await client.get(f"/inventory/stock/{product['id']}/adjustments", headers=admin.headers)
    ).json()["items"]
    assert [(a["oldOnHand"], a["newOnHand"], a["reason"]) for a in audit] == [
        (25, 24, "cycle count"),
        (10, 25, "delivery from supplier"),
        (0, 10, "initial stock"),
    ]
    assert {(a["actorId"], a["actorEmail"]) for a in audit} == {
        (admin.principal.user_id, admin.principal.email)
    }
    assert all(a["createdAt"] for a in audit)


async def test_stock_cannot_drop_below_what_is_reserved(
    client: httpx.AsyncClient, admin: Bearer, shell: EventShell[InventoryService]
) -> None:
    product = await create_product(client, admin, stock=10)
    created = order_created([(product["id"], 4)])
    assert await apply_event(shell, ORDER_CREATED, created) == "confirmed"

    path = f"/inventory/stock/{product['id']}"
    refused = await client.put(path, json={"onHand": 3, "reason": "lost"}, headers=admin.headers)
    assert refused.status_code == 409
    assert refused.json()["reserved"] == 4
    allowed = await client.put(path, json={"onHand": 4, "reason": "lost"}, headers=admin.headers)
    assert allowed.status_code == 200
    assert (allowed.json()["onHand"], allowed.json()["available"]) == (4, 0)
    audit = (await client.get(f"{path}/adjustments", headers=admin.headers)).json()["items"]
    assert [(a["oldOnHand"], a["newOnHand"]) for a in audit] == [(10, 4), (0, 10)]


async def test_unknown_products_are_not_found(client: httpx.AsyncClient, admin: Bearer) -> None:
    unknown = uuid.uuid4()
    for path in (
        f"/inventory/products/{unknown}",
        "/inventory/products/not-a-uuid",
        f"/inventory/stock/{unknown}",
        "/inventory/stock/not-a-uuid",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
    put = await client.put(
        f"/inventory/stock/{unknown}", json={"onHand": 1, "reason": "x"}, headers=admin.headers
    )
    assert put.status_code == 404


async def test_ready_when_postgres_redis_and_kafka_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {
        "postgres": "ok",
        "redis": "ok",
        "kafka": "ok",
        "jobs": "ok",
    }
    metrics = (await client.get("/metrics")).text
    assert 'inventory_reservations_total{outcome="confirmed"}' in metrics
    assert 'inventory_product_cache_requests_total{result="hit"}' in metrics
