"""The in-app center, preferences and the delivery trail over HTTP, on real servers.

A user sees and changes only their own notifications (another's is 404, as for orders); every
bad input is a 4xx problem+json, never a 5xx.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from devstack.testing import RedisServer
from services.kit.consumer import EventShell
from services.kit.live import NOTIFICATION_UNREAD
from services.kit.pagination import encode_cursor
from services.notifications import repository as repo
from tests.integration.notifications.support import confirmed, created
from tests.integration.orders.support import LiveListener
from tests.support import Bearer, eventually

pytestmark = pytest.mark.integration


async def _notify(shell: EventShell[Any], user: Bearer, count: int) -> list[str]:
    """`count` orders confirmed for `user`, oldest first; returns their order ids."""
    orders = []
    for _ in range(count):
        order_id = str(uuid.uuid4())
        topic, envelope = confirmed(order_id, user.id)
        await shell.handle(topic, envelope.to_bytes())
        orders.append(order_id)
    return orders


async def test_pages_are_newest_first_with_the_unread_count(
    client: httpx.AsyncClient, shell: EventShell[Any], user: Bearer
) -> None:
    orders = await _notify(shell, user, 5)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/notifications", params=params, headers=user.headers)
        assert response.status_code == 200
        page = response.json()
        assert page["unreadCount"] == 5
        assert len(page["items"]) <= 2
        seen += [item["orderId"] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(orders))


async def test_the_unread_count_stops_at_its_limit(
    client: httpx.AsyncClient,
    shell: EventShell[Any],
    user: Bearer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(repo, "UNREAD_COUNT_LIMIT", 3)
    await _notify(shell, user, 4)
    page = (await client.get("/notifications", headers=user.headers)).json()
    assert page["unreadCount"] == 3, "counted up to the limit: a badge shows 3+"
    assert len(page["items"]) == 4, "the list itself is not limited"


async def test_read_one_then_read_all(
    client: httpx.AsyncClient, shell: EventShell[Any], user: Bearer, redis_server: RedisServer
) -> None:
    await _notify(shell, user, 3)
    items = (await client.get("/notifications", headers=user.headers)).json()["items"]
    first = items[0]["id"]

    response = await client.post(f"/notifications/{first}/read", headers=user.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["read"] is True
    read_at = body["readAt"]
    again = await client.post(f"/notifications/{first}/read", headers=user.headers)
    assert again.json()["readAt"] == read_at, "reading twice keeps the first time"
    page = (await client.get("/notifications", headers=user.headers)).json()
    assert page["unreadCount"] == 2
    assert [i["read"] for i in page["items"]] == [True, False, False]

    async with LiveListener(redis_server.url) as live:
        response = await client.post("/notifications/read-all", headers=user.headers)
        assert response.status_code == 200
        assert response.json() == {"marked": 2, "unreadCount": 0}

        async def pushed_zero() -> bool:
            return any(
                u["event"] == NOTIFICATION_UNREAD
                and u.get("userId") == user.id
                and u["unreadCount"] == 0
                for u in live.updates
            )

        await eventually(pushed_zero, what="the unread count pushed live")
    page = (await client.get("/notifications", headers=user.headers)).json()
    assert page["unreadCount"] == 0
    assert all(i["read"] for i in page["items"])


async def test_another_users_notifications_are_not_found(
    client: httpx.AsyncClient, shell: EventShell[Any], user: Bearer, other_user: Bearer
) -> None:
    await _notify(shell, user, 1)
    mine = (await client.get("/notifications", headers=user.headers)).json()["items"][0]["id"]
    response = await client.post(f"/notifications/{mine}/read", headers=other_user.headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    theirs = (await client.get("/notifications", headers=other_user.headers)).json()
    assert theirs == {"items": [], "nextCursor": None, "unreadCount": 0}
    await client.post("/notifications/read-all", headers=other_user.headers)
    page = (await client.get("/notifications", headers=user.headers)).json()
    assert page["unreadCount"] == 1


async def test_preferences_default_then_saved(client: httpx.AsyncClient, user: Bearer) -> None:
    response = await client.get("/notifications/preferences", headers=user.headers)
    assert response.status_code == 200
    defaults = response.json()
    assert defaults["updatedAt"] is None
    assert defaults["inApp"] is True
    assert defaults["defaults"] == {"email": True, "sms": False, "push": True}
    assert defaults["channels"]["order.shipped"] == {"email": True, "sms": False, "push": True}

    response = await client.put(
        "/notifications/preferences",
        json={"channels": {"order.shipped": {"sms": True}}, "phone": "+4930123456"},
        headers=user.headers,
    )
    assert response.status_code == 200
    saved = response.json()
    assert saved["channels"]["order.shipped"] == {"email": True, "sms": True, "push": True}
    assert saved["channels"]["order.created"] == {"email": True, "sms": False, "push": True}
    assert saved["email"] == user.principal.email, "the sign-in email when none is given"
    assert saved["phone"] == "+4930123456"
    assert saved["updatedAt"] is not None
    assert (await client.get("/notifications/preferences", headers=user.headers)).json() == saved

    response = await client.put(
        "/notifications/preferences", json={"email": None}, headers=user.headers
    )
    assert response.json()["email"] is None
    assert response.json()["channels"]["order.shipped"]["sms"] is False


async def test_the_delivery_trail_is_for_admins(
    client: httpx.AsyncClient, shell: EventShell[Any], user: Bearer, admin: Bearer
) -> None:
    order_id = str(uuid.uuid4())
    for topic, envelope in (created(order_id, user.id), confirmed(order_id, user.id)):
        await shell.handle(topic, envelope.to_bytes())
    response = await client.get(f"/notifications/orders/{order_id}", headers=user.headers)
    assert response.status_code == 403
    response = await client.get(f"/notifications/orders/{order_id}", headers=admin.headers)
    assert response.status_code == 200
    trail = response.json()
    assert trail["orderId"] == order_id
    assert trail["notifiedVersion"] == 2
    assert [n["eventType"] for n in trail["notifications"]] == ["order.created", "order.confirmed"]
    for entry in trail["notifications"]:
        assert entry["userId"] == user.id
        assert {d["channel"] for d in entry["deliveries"]} == {"email", "push"}
    unknown = await client.get(f"/notifications/orders/{uuid.uuid4()}", headers=admin.headers)
    assert unknown.status_code == 200
    assert unknown.json()["notifications"] == []


BAD_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/notifications?limit=0", {}),
    ("GET", "/notifications?limit=101", {}),
    ("GET", "/notifications?limit=ten", {}),
    ("GET", "/notifications?cursor=not-a-cursor", {}),
    ("GET", f"/notifications?cursor={encode_cursor('yesterday', 'x')}", {}),
    ("GET", f"/notifications?cursor={encode_cursor(1, 2, 3)}", {}),
    ("GET", "/notifications?cursor=" + "a" * 201, {}),
    ("POST", "/notifications/not-a-uuid/read", {}),
    ("POST", f"/notifications/{uuid.uuid4()}/read", {}),
    ("GET", "/notifications/orders/not-a-uuid", {}),
    ("PUT", "/notifications/preferences", {"json": {"channels": {"order.lost": {"email": True}}}}),
    ("PUT", "/notifications/preferences", {"json": {"channels": {"order.shipped": {"fax": True}}}}),
    ("PUT", "/notifications/preferences", {"json": {"channels": {"order.shipped": {"sms": "on"}}}}),
    ("PUT", "/notifications/preferences", {"json": {"email": "nobody"}}),
    ("PUT", "/notifications/preferences", {"json": {"phone": "12"}}),
    ("PUT", "/notifications/preferences", {"json": {"quietHours": "22-7"}}),
    ("PUT", "/notifications/preferences", {"json": []}),
    ("PUT", "/notifications/preferences", {"content": b"{not json"}),
    ("PUT", "/notifications/preferences", {}),
]


@pytest.mark.parametrize(("method", "path", "extra"), BAD_REQUESTS)
async def test_bad_input_is_a_4xx_problem(
    client: httpx.AsyncClient,
    admin: Bearer,
    method: str,
    path: str,
    extra: dict[str, Any],
) -> None:
    response = await client.request(method, path, headers=admin.headers, **extra)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == response.status_code


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/notifications"),
        ("GET", "/notifications/preferences"),
        ("PUT", "/notifications/preferences"),
        ("POST", f"/notifications/{uuid.uuid4()}/read"),
        ("POST", "/notifications/read-all"),
        ("GET", f"/notifications/orders/{uuid.uuid4()}"),
    ],
)
async def test_every_endpoint_needs_a_token(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    for headers in ({}, {"Authorization": "Bearer forged"}):
        response = await client.request(method, path, headers=headers, json={})
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"


async def test_ready_once_every_dependency_and_job_is(client: httpx.AsyncClient) -> None:
    async def ready() -> dict[str, Any] | None:
        response = await client.get("/readyz")
        return response.json() if response.status_code == 200 else None

    body = await eventually(ready, what="/readyz")
    assert body["checks"] == {
        "postgres": "ok",
        "redis": "ok",
        "kafka": "ok",
        "rabbitmq": "ok",
        "jobs": "ok",
    }
    assert (await client.get("/healthz")).status_code == 200
