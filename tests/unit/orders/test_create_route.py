"""The create's lean path (services/orders/create_route.py) answers as the endpoint does.

Each request is sent to two apps, one with the lean route and one without it, both over the
same stubbed service: status, headers (but the request id) and body must be the same, byte for
byte. The stub records which path served a create: the lean route calls the service in the
app's state, the endpoint the one its dependency gives.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from starlette.types import Message

from services.kit.errors import DomainError
from services.kit.tokens import Principal
from services.orders import main
from services.orders import repository as repo
from services.orders.domain import Status
from services.orders.endpoints import _service
from services.orders.errors import ProductUnavailable
from services.orders.schemas import CreateOrderRequest
from services.orders.service import Created, OrderView
from services.orders.settings import Settings
from tests.asgi import call_app
from tests.signing import sign, token_env

ORDER_ID = uuid.UUID("2f1c7a4e-0c8e-4a43-9d55-7a0f3c2b1e90")
PRODUCT_ID = "0b6f3c3e-6d7e-4f8a-9b1c-2d3e4f5a6b7c"
AT = datetime(2026, 12, 5, 12, 0, 0, 123456, tzinfo=UTC)
ADDRESS = {
    "name": "Zoë Ångström",
    "line1": "1 Straße",
    "line2": None,
    "city": "Zürich",
    "postalCode": "8001",
    "country": "CH",
}


def _view(user_id: str) -> OrderView:
    return OrderView(
        repo.OrderRow(
            ORDER_ID, user_id, Status.CREATED, 1, Decimal("25.00"), "CHF", ADDRESS, AT, AT
        ),
        [
            repo.LineRow(
                ORDER_ID,
                1,
                PRODUCT_ID,
                "MUG-1",
                "Tasse « émaillée »",
                2,
                Decimal("12.50"),
                Decimal("25.00"),
            )
        ],
        [repo.TimelineRow(ORDER_ID, 1, Status.CREATED, f"user:{user_id}", None, None, AT)],
    )


@dataclass
class StubOrders:
    """Answers every create with one order; `replayed` and `refusal` choose the answer."""

    served_by: str
    calls: list[tuple[str, Principal, CreateOrderRequest, str | None]] = field(default_factory=list)
    replayed: bool = False
    refusal: DomainError | None = None

    async def create(
        self, principal: Principal, request: CreateOrderRequest, key: str | None
    ) -> Created:
        self.calls.append((self.served_by, principal, request, key))
        if self.refusal is not None:
            raise self.refusal
        return Created(_view(principal.user_id), self.replayed)


class Revocations:
    async def check(self, principal: Principal) -> None:
        return None


@dataclass
class Apps:
    settings: Settings
    lean: FastAPI
    endpoint_only: FastAPI
    lean_orders: StubOrders
    endpoint_orders: StubOrders

    def configure(self, **changes: Any) -> None:
        for orders in (self.lean_orders, self.endpoint_orders):
            for name, value in changes.items():
                setattr(orders, name, value)

    def calls(self) -> list[tuple[str, Principal, CreateOrderRequest, str | None]]:
        return self.lean_orders.calls + self.endpoint_orders.calls


def _app(settings: Settings, *, lean: bool, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    with monkeypatch.context() as patch:
        if not lean:
            patch.setattr(main, "install_create_route", lambda app, router: None)
        return main.create_app(settings)


@pytest.fixture
def apps(monkeypatch: pytest.MonkeyPatch) -> Apps:
    settings = Settings(**token_env())
    lean = _app(settings, lean=True, monkeypatch=monkeypatch)
    endpoint_only = _app(settings, lean=False, monkeypatch=monkeypatch)
    lean_orders, endpoint_orders = StubOrders("lean route"), StubOrders("endpoint")
    for app in (lean, endpoint_only):
        app.state.revocations = Revocations()
        # The lean route takes the service from the app's state, the endpoint from its
        # dependency: the stub each call reached says which path served it.
        app.state.orders = lean_orders
        app.dependency_overrides[_service] = lambda: endpoint_orders
    return Apps(settings, lean, endpoint_only, lean_orders, endpoint_orders)


def _token(apps: Apps, user_id: str = "u-1") -> str:
    return sign(apps.settings, Principal(user_id, f"{user_id}@example.com", "USER"))


def _body(**changes: Any) -> dict[str, Any]:
    return {
        "items": [{"productId": PRODUCT_ID, "quantity": 2}],
        "shippingAddress": {k: v for k, v in ADDRESS.items() if k != "line2"},
    } | changes


Headers = dict[str, str] | list[tuple[bytes, bytes]]


async def _send(app: FastAPI, path: str, headers: Headers, content: bytes) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
        return await client.post(path, headers=headers, content=content)


def _comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted((k, v) for k, v in response.headers.items() if k != "x-request-id")
    return response.status_code, headers, response.content


async def _both(
    apps: Apps, path: str, headers: Headers, content: bytes
) -> tuple[httpx.Response, list[str]]:
    """The answer of the app with the lean route, once it is checked to be the other's; and
    which path served the create in each app (the service's calls)."""
    lean = await _send(apps.lean, path, headers, content)
    served_lean = [call[0] for call in apps.calls()]
    apps.lean_orders.calls.clear()
    apps.endpoint_orders.calls.clear()
    endpoint = await _send(apps.endpoint_only, path, headers, content)
    assert _comparable(lean) == _comparable(endpoint)
    return lean, served_lean


def _json_headers(apps: Apps, **extra: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {_token(apps)}",
    } | extra


@pytest.mark.parametrize("path", ["/orders", "/orders/create"])
async def test_a_valid_create_is_served_by_the_lean_route_with_the_endpoints_answer(
    apps: Apps, path: str
) -> None:
    response, served = await _both(apps, path, _json_headers(apps), orjson.dumps(_body()))

    assert served == ["lean route"]
    assert response.status_code == 201
    assert response.headers["location"] == f"/orders/{ORDER_ID}"
    assert "idempotent-replayed" not in response.headers
    order = response.json()
    assert order["items"][0]["name"] == "Tasse « émaillée »"
    assert order["shippingAddress"]["city"] == "Zürich"
    assert order["total"] == "25.00"


async def test_the_lean_route_passes_the_caller_the_body_and_the_key(apps: Apps) -> None:
    headers = _json_headers(apps, **{"Idempotency-Key": "order-7 retry"[:7]})
    body = _body(items=[{"productId": PRODUCT_ID, "quantity": 2}] * 2)
    await _send(apps.lean, "/orders", headers, orjson.dumps(body))

    [(served_by, principal, request, key)] = apps.calls()
    assert served_by == "lean route"
    assert principal.user_id == "u-1"
    assert request.quantities() == {PRODUCT_ID: 4}
    assert request.shipping_address.country == "CH"
    assert key == "order-7"


async def test_a_replay_is_answered_200_with_the_replayed_header(apps: Apps) -> None:
    apps.configure(replayed=True)
    headers = _json_headers(apps, **{"Idempotency-Key": "k-1"})
    response, served = await _both(apps, "/orders", headers, orjson.dumps(_body()))

    assert served == ["lean route"]
    assert response.status_code == 200
    assert response.headers["idempotent-replayed"] == "true"


async def test_a_content_type_with_parameters_is_still_json(apps: Apps) -> None:
    headers = _json_headers(apps) | {"Content-Type": "Application/JSON; charset=utf-8"}
    response, served = await _both(apps, "/orders", headers, orjson.dumps(_body()))

    assert served == ["lean route"]
    assert response.status_code == 201


async def test_a_domain_refusal_is_the_endpoints_problem(apps: Apps) -> None:
    apps.configure(refusal=ProductUnavailable(unknown=[PRODUCT_ID], inactive=[]))
    response, served = await _both(apps, "/orders", _json_headers(apps), orjson.dumps(_body()))

    assert served == ["lean route"]
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["unknownProducts"] == [PRODUCT_ID]
    assert response.json()["instance"] == "/orders"


@pytest.mark.parametrize(
    "authorization", [None, "Bearer not-a-token", "Basic dTpw"], ids=["none", "bad", "basic"]
)
async def test_a_caller_without_a_valid_token_is_refused_as_by_the_endpoint(
    apps: Apps, authorization: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response, served = await _both(apps, "/orders", headers, orjson.dumps(_body()))

    assert served == []
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("application/json", b"{not json"),
        ("application/json", b""),
        ("application/json", b"\xff\xfe"),
        ("application/json", orjson.dumps(_body(items=[]))),
        ("application/json", orjson.dumps(_body(total="1.00"))),
        ("application/json", orjson.dumps([_body()])),
        ("text/plain", orjson.dumps(_body())),
        (None, orjson.dumps(_body())),
    ],
    ids=[
        "not-json",
        "empty",
        "not-utf8",
        "no-items",
        "unknown-field",
        "not-an-object",
        "text-plain",
        "no-content-type",
    ],
)
async def test_a_body_the_lean_route_declines_gets_the_endpoints_answer(
    apps: Apps, content_type: str | None, content: bytes
) -> None:
    headers = _json_headers(apps)
    if content_type is None:
        del headers["Content-Type"]
    else:
        headers["Content-Type"] = content_type
    response, served = await _both(apps, "/orders", headers, content)

    assert served == []
    assert response.status_code == 422


async def test_json_nested_too_deep_to_parse_gets_the_endpoints_answer(apps: Apps) -> None:
    content = b"[" * 100_000 + b"]" * 100_000
    response, served = await _both(apps, "/orders", _json_headers(apps), content)

    assert served == []
    assert response.status_code < 500


async def test_a_json_subtype_goes_to_the_endpoint_which_accepts_it(apps: Apps) -> None:
    headers = _json_headers(apps) | {"Content-Type": "application/vnd.order+json"}
    response, served = await _both(apps, "/orders", headers, orjson.dumps(_body()))

    assert served == ["endpoint"]
    assert response.status_code == 201


@pytest.mark.parametrize("key", ["", "with space", "x" * 256, "naïve"])
async def test_a_malformed_idempotency_key_gets_the_endpoints_refusal(apps: Apps, key: str) -> None:
    headers = _json_headers(apps)
    raw = [(name.encode(), value.encode()) for name, value in headers.items()]
    raw.append((b"idempotency-key", key.encode()))
    response, served = await _both(apps, "/orders", raw, orjson.dumps(_body()))

    assert served == []
    assert response.status_code == 422


async def test_a_key_of_255_visible_characters_is_taken(apps: Apps) -> None:
    headers = _json_headers(apps, **{"Idempotency-Key": "~" * 255})
    response, served = await _both(apps, "/orders", headers, orjson.dumps(_body()))

    assert served == ["lean route"]
    assert response.status_code == 201


async def test_other_methods_and_paths_are_left_to_the_router(apps: Apps) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=apps.lean), base_url="http://orders"
    ) as client:
        put = await client.put("/orders/create", json=_body())
        post = await client.post("/orders/", json=_body(), headers=_json_headers(apps))

    assert put.status_code == 405
    assert post.status_code in (307, 404)
    assert apps.calls() == []


def _requests(route: str) -> float:
    value = REGISTRY.get_sample_value(
        "http_requests_total",
        {"service": "orders", "method": "POST", "route": route, "status": "2xx"},
    )
    return value or 0.0


async def test_a_lean_create_is_counted_under_its_routes_template(apps: Apps) -> None:
    before = _requests("/orders/create")
    await _send(apps.lean, "/orders/create", _json_headers(apps), orjson.dumps(_body()))

    assert _requests("/orders/create") == before + 1


async def _drive(
    app: FastAPI, messages: list[Message], headers: list[tuple[bytes, bytes]]
) -> list[Message]:
    """A create sent with `messages` as its body, then a disconnect; what the app sent back."""
    return await call_app(app, "POST", "/orders", [(b"host", b"orders"), *headers], messages)


async def test_a_body_in_chunks_is_read_whole(apps: Apps) -> None:
    content = orjson.dumps(_body())
    chunks = [content[:10], content[10:30], content[30:]]
    messages: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < 2}
        for i, chunk in enumerate(chunks)
    ]
    headers = [
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {_token(apps)}".encode()),
    ]
    sent = await _drive(apps.lean, messages, headers)

    assert sent[0]["status"] == 201
    assert [call[0] for call in apps.calls()] == ["lean route"]


async def test_a_client_gone_before_its_body_ends_gets_no_answer_and_nothing_is_placed(
    apps: Apps,
) -> None:
    content = orjson.dumps(_body())
    messages: list[Message] = [{"type": "http.request", "body": content[:10], "more_body": True}]
    headers = [
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {_token(apps)}".encode()),
    ]
    sent = await _drive(apps.lean, list(messages), headers)

    assert apps.calls() == []
    assert sent == []


async def test_a_declared_body_over_the_limit_is_refused_413_before_it_is_read(
    apps: Apps,
) -> None:
    limit = apps.settings.max_request_body_bytes
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(limit + 1).encode()),
        (b"x-request-id", b"big-one"),
    ]
    sent = await _drive(apps.lean, [], headers)

    assert sent[0]["status"] == 413
    assert (b"x-request-id", b"big-one") in sent[0]["headers"]
    assert orjson.loads(sent[1]["body"])["type"].endswith("/payload-too-large")
    assert apps.calls() == []


async def test_a_streamed_body_over_the_limit_is_refused_413(apps: Apps) -> None:
    limit = apps.settings.max_request_body_bytes
    messages: list[Message] = [
        {"type": "http.request", "body": b"x" * (limit // 2 + 1), "more_body": True},
        {"type": "http.request", "body": b"x" * (limit // 2 + 1), "more_body": True},
    ]
    sent = await _drive(apps.lean, messages, [(b"content-type", b"application/json")])

    assert sent[0]["status"] == 413
    assert apps.calls() == []
