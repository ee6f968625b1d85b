"""The gateway in front of real HTTP upstreams, both served by uvicorn on free ports.

The upstream is an echo app: it answers with the method, path, query, headers, body and
client address it received, so each test sees exactly what the gateway forwarded. A second
upstream accepts connections and closes them without answering, and one upstream port is
closed, to prove 502s and the retry policy; a slow echo proves the 504. Upstreams that fail
after answering are in test_gateway_upstream_errors.py.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute

from devstack.testing import RedisServer
from services.gateway.main import create_app
from services.gateway.settings import Settings
from services.kit.keys import SigningKey, generate_pem_pair
from services.kit.tokens import Principal, Role, issue_access_token
from tests.integration.gateway.support import UvicornThread, closed_port, listening_socket
from tests.signing import SIGNING_KEY, sign, token_env

pytestmark = pytest.mark.integration

TIMEOUT_SECONDS = 1.0
MAX_CONNECTIONS = 4
MAX_BODY = 4096
ORIGIN = "http://localhost:5173"


class SilentUpstream:
    """Reads each request's head, then closes the connection without an answer."""

    def __init__(self) -> None:
        self.sock = listening_socket()
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.request_lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                if head:
                    self.request_lines.append(head.split(b"\r\n", 1)[0].decode())

    def __enter__(self) -> SilentUpstream:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


async def echo(request: Request) -> Response:
    if "sleep" in request.query_params:
        await asyncio.sleep(float(request.query_params["sleep"]))
    body = await request.body()
    if request.query_params.get("status") == "204":
        return Response(status_code=204, headers={"X-Upstream": "echo"})
    client = request.client
    payload: dict[str, Any] = {
        "method": request.method,
        "path": request.url.path,
        "raw_path": request.scope["raw_path"].decode(),
        "query": request.scope["query_string"].decode(),
        "headers": [[k.decode(), v.decode()] for k, v in request.scope["headers"]],
        "body": body.decode("latin-1"),
        "client": [client.host, client.port] if client else None,
    }
    response = JSONResponse(
        payload,
        status_code=int(request.query_params.get("status", "200")),
        headers={
            "X-Upstream": "echo",
            "Access-Control-Allow-Origin": "*",
            "X-Request-ID": request.headers.get("x-request-id", ""),
        },
    )
    response.set_cookie("first", "1")
    response.set_cookie("second", "2")
    return response


def echo_app() -> Starlette:
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(routes=[StarletteRoute("/{path:path}", echo, methods=methods)])


def received_headers(response: httpx.Response) -> dict[str, list[str]]:
    """The headers the echo upstream received, by lower-case name."""
    seen: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        seen.setdefault(name, []).append(value)
    return seen


class Gateway:
    def __init__(self, app: FastAPI, server: UvicornThread, settings: Settings) -> None:
        self.app = app
        self.server = server
        self.settings = settings
        self.client = httpx.Client(base_url=server.url, timeout=10)

    def token(self, role: Role = "USER", key: SigningKey = SIGNING_KEY) -> str:
        principal = Principal(user_id=f"{role.lower()}-1", email="a@example.com", role=role)
        return issue_access_token(self.settings, key, principal)

    def auth(self, role: Role = "USER") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role)}"}


@pytest.fixture(scope="module")
def silent() -> Iterator[SilentUpstream]:
    with SilentUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def upstream() -> Iterator[UvicornThread]:
    # proxy_headers off, so the echo reports the gateway's real connection ports
    with UvicornThread(echo_app(), proxy_headers=False) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    upstream: UvicornThread, silent: SilentUpstream, redis_server: RedisServer
) -> Iterator[Gateway]:
    settings = Settings(
        APP_ENV="test",
        **token_env(),
        REDIS_URL=redis_server.url,
        AUTH_SERVICE_URL=upstream.url,
        ORDER_SERVICE_URL=upstream.url,
        INVENTORY_SERVICE_URL=upstream.url,
        NOTIFICATION_SERVICE_URL=f"http://127.0.0.1:{closed_port()}",
        ANALYTICS_SERVICE_URL=f"http://127.0.0.1:{silent.port}",
        UPSTREAM_TIMEOUT_SECONDS=TIMEOUT_SECONDS,
        UPSTREAM_MAX_CONNECTIONS=MAX_CONNECTIONS,
        MAX_REQUEST_BODY_BYTES=MAX_BODY,
        CORS_ORIGINS=f"{ORIGIN},http://localhost:5174",
    )
    app = create_app(settings)
    with UvicornThread(app) as server:
        gw = Gateway(app, server, settings)
        yield gw
        gw.client.close()


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


# --- forwarding ---------------------------------------------------------------------------


def test_method_path_query_and_body_reach_the_upstream_unchanged(gateway: Gateway) -> None:
    body = b'{"items": [{"productId": "p-1", "quantity": 2}]}'
    response = gateway.client.post(
        "/orders?a=1&b=x%20y&b=2",
        content=body,
        headers={**gateway.auth(), "Content-Type": "application/json", "Idempotency-Key": "k-1"},
    )
    assert response.status_code == 200
    seen = response.json()
    assert (seen["method"], seen["path"], seen["query"]) == ("POST", "/orders", "a=1&b=x%20y&b=2")
    assert seen["body"].encode() == body
    headers = received_headers(response)
    assert headers["content-type"] == ["application/json"]
    assert headers["idempotency-key"] == ["k-1"]
    assert headers["content-length"] == [str(len(body))]


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_every_method_is_forwarded(gateway: Gateway, method: str) -> None:
    response = gateway.client.request(method, "/orders/o-1/items", headers=gateway.auth())
    assert response.status_code == 200
    assert response.json()["method"] == method


def test_the_raw_path_is_forwarded_still_encoded(gateway: Gateway) -> None:
    response = gateway.client.get("/inventory/products/a%20b")
    assert response.json()["raw_path"] == "/inventory/products/a%20b"


def test_upstream_status_headers_and_body_come_back(gateway: Gateway) -> None:
    response = gateway.client.get("/orders/missing?status=404", headers=gateway.auth())
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["path"] == "/orders/missing"
    assert response.headers["x-upstream"] == "echo"
    assert response.headers.get_list("set-cookie") == [
        "first=1; Path=/; SameSite=lax",
        "second=2; Path=/; SameSite=lax",
    ]
    assert response.headers["content-length"] == str(len(response.content))
    assert response.headers.get_list("date") == [response.headers["date"]]


def test_an_empty_answer_stays_empty(gateway: Gateway) -> None:
    response = gateway.client.post("/auth/logout?status=204", json={"refreshToken": "r"})
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["x-upstream"] == "echo"
    assert "content-length" not in response.headers


def test_head_answers_carry_the_upstream_length_without_a_body(gateway: Gateway) -> None:
    response = gateway.client.head("/inventory/products")
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0


def test_the_pooled_client_keeps_no_cookies(gateway: Gateway) -> None:
    first = gateway.client.get("/inventory/products")
    assert first.headers.get_list("set-cookie")
    second = httpx.get(f"{gateway.server.url}/inventory/products")
    assert "cookie" not in received_headers(second)


def test_hop_by_hop_and_forged_identity_headers_are_dropped(gateway: Gateway) -> None:
    auth = gateway.auth()
    response = gateway.client.get(
        "/orders",
        headers={
            **auth,
            "Connection": "keep-alive, X-Private-Hop",
            "X-Private-Hop": "1",
            "X-User-Id": "admin-1",
            "X-User-Role": "ADMIN",
            "X-User-Email": "root@example.com",
        },
    )
    assert response.status_code == 200
    headers = received_headers(response)
    assert not [name for name in headers if name.startswith("x-user-") or name == "x-private-hop"]
    assert headers["authorization"] == [auth["Authorization"]]


def test_forwarding_headers_describe_the_client(gateway: Gateway) -> None:
    headers = received_headers(gateway.client.get("/inventory/products"))
    assert headers["x-forwarded-for"] == ["127.0.0.1"]
    assert headers["x-forwarded-proto"] == ["http"]
    assert headers["x-forwarded-host"] == [f"127.0.0.1:{gateway.server.port}"]
    # the gateway trusts a proxy on 127.0.0.1, like uvicorn's default: the chain is kept
    headers = received_headers(
        gateway.client.get("/inventory/products", headers={"X-Forwarded-For": "203.0.113.7"})
    )
    assert headers["x-forwarded-for"] == ["203.0.113.7"]


def test_a_given_request_id_is_forwarded_and_returned_once(gateway: Gateway) -> None:
    response = gateway.client.get("/inventory/products", headers={"X-Request-ID": "req-abc-123"})
    assert received_headers(response)["x-request-id"] == ["req-abc-123"]
    assert response.headers.get_list("x-request-id") == ["req-abc-123"]


def test_a_request_id_is_generated_and_forwarded_when_missing(gateway: Gateway) -> None:
    response = gateway.client.get("/inventory/products")
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32
    assert received_headers(response)["x-request-id"] == [request_id]
    other = gateway.client.get("/inventory/products")
    assert other.headers["x-request-id"] != request_id


def test_a_body_over_the_limit_is_413(gateway: Gateway) -> None:
    too_big = b"x" * (MAX_BODY + 1)
    response = gateway.client.post("/orders", content=too_big, headers=gateway.auth())
    assert_problem(response, 413)

    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"y" * 1024

    chunked = gateway.client.post("/orders", content=chunks(), headers=gateway.auth())
    assert_problem(chunked, 413)
    at_limit = gateway.client.post("/orders", content=b"z" * MAX_BODY, headers=gateway.auth())
    assert at_limit.status_code == 200
    assert len(at_limit.json()["body"]) == MAX_BODY


def test_unknown_paths_are_404_without_reaching_a_service(gateway: Gateway) -> None:
    body = assert_problem(gateway.client.get("/nothing/here"), 404)
    assert body["instance"] == "/nothing/here"


def test_dot_segments_are_refused(gateway: Gateway) -> None:
    # httpx would normalise the path, http.client sends it as written
    conn = http.client.HTTPConnection("127.0.0.1", gateway.server.port, timeout=5)
    try:
        conn.request("GET", "/inventory/products/../../auth/users")
        response = conn.getresponse()
        assert response.status == 400
        assert json.loads(response.read())["type"].endswith("/invalid-path")
    finally:
        conn.close()


# --- access policy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/auth/register"),
        ("POST", "/auth/login"),
        ("POST", "/auth/refresh"),
        ("POST", "/auth/logout"),
        ("GET", "/inventory/products"),
        ("GET", "/inventory/products/p-1"),
        ("GET", "/inventory/stock/p-1"),
    ],
)
def test_public_routes_need_no_token(gateway: Gateway, method: str, path: str) -> None:
    response = gateway.client.request(method, path)
    assert response.status_code == 200
    assert response.json()["path"] == path


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/auth/verify"),
        ("GET", "/orders"),
        ("POST", "/orders/create"),
        ("GET", "/orders/o-1"),
        ("POST", "/inventory/products"),
        ("GET", "/notifications"),
    ],
)
def test_protected_routes_without_a_token_are_401(gateway: Gateway, method: str, path: str) -> None:
    response = gateway.client.request(method, path)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "ADMIN"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_a_tampered_or_foreign_token_is_401(gateway: Gateway) -> None:
    tampered = _tampered(gateway.token("USER"))
    response = gateway.client.get("/orders", headers={"Authorization": f"Bearer {tampered}"})
    assert_problem(response, 401)
    foreign = gateway.token("ADMIN", key=SigningKey.from_pem(generate_pem_pair()[0]))
    response = gateway.client.get("/orders", headers={"Authorization": f"Bearer {foreign}"})
    assert_problem(response, 401)
    response = gateway.client.get("/orders", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert_problem(response, 401)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/orders/o-1/status"),
        ("GET", "/auth/users"),
        ("PATCH", "/auth/users/u-2/role"),
        ("POST", "/inventory/products"),
        ("PATCH", "/inventory/products/p-1"),
        ("PUT", "/inventory/stock/p-1"),
        ("GET", "/analytics/dashboard"),
    ],
)
def test_admin_routes_refuse_a_user_with_403(gateway: Gateway, method: str, path: str) -> None:
    body = assert_problem(gateway.client.request(method, path, headers=gateway.auth("USER")), 403)
    assert body["detail"] == "This action needs the ADMIN role."


def test_admin_routes_let_an_admin_through_with_the_token_unchanged(gateway: Gateway) -> None:
    auth = gateway.auth("ADMIN")
    response = gateway.client.put("/orders/o-1/status", json={"status": "SHIPPED"}, headers=auth)
    assert response.status_code == 200
    assert response.json()["path"] == "/orders/o-1/status"
    assert received_headers(response)["authorization"] == [auth["Authorization"]]
    assert gateway.client.get("/auth/users", headers=auth).status_code == 200


def test_a_user_reaches_signed_in_routes(gateway: Gateway) -> None:
    response = gateway.client.post("/orders/create", json={"items": []}, headers=gateway.auth())
    assert response.status_code == 200
    assert response.json()["path"] == "/orders/create"


# --- failing upstreams --------------------------------------------------------------------


def test_a_slow_upstream_is_504_after_the_timeout_without_retry(gateway: Gateway) -> None:
    started = time.monotonic()
    response = gateway.client.get("/orders?sleep=3", headers=gateway.auth())
    elapsed = time.monotonic() - started
    body = assert_problem(response, 504)
    assert body["upstream"] == "orders"
    assert TIMEOUT_SECONDS * 0.9 <= elapsed < TIMEOUT_SECONDS * 2


def test_a_closed_upstream_port_is_502(gateway: Gateway) -> None:
    body = assert_problem(gateway.client.get("/notifications", headers=gateway.auth()), 502)
    assert body["upstream"] == "notifications"
    assert body["type"].endswith("/upstream-unavailable")


@pytest.mark.parametrize(
    ("method", "attempts"),
    [("GET", 2), ("HEAD", 2), ("OPTIONS", 2), ("PUT", 2), ("DELETE", 2), ("POST", 1), ("PATCH", 1)],
)
def test_only_idempotent_methods_are_retried_when_an_upstream_got_them_but_did_not_answer(
    gateway: Gateway, silent: SilentUpstream, method: str, attempts: int
) -> None:
    before = len(silent.request_lines)
    response = gateway.client.request(method, "/analytics/revenue", headers=gateway.auth("ADMIN"))
    assert response.status_code == 502
    assert silent.request_lines[before:] == [f"{method} /analytics/revenue HTTP/1.1"] * attempts


# --- pooling ------------------------------------------------------------------------------


def test_sequential_requests_reuse_one_pooled_connection(gateway: Gateway) -> None:
    pooled = gateway.app.state.upstream_client
    ports = {tuple(gateway.client.get("/inventory/products").json()["client"]) for _ in range(30)}
    assert len(ports) == 1
    assert gateway.app.state.upstream_client is pooled
    assert not pooled.http.closed


def test_concurrent_requests_share_a_bounded_pool(gateway: Gateway) -> None:
    # short upstream work, so requests queued for a pooled connection stay within the timeout
    def call(_: int) -> httpx.Response:
        return httpx.get(f"{gateway.server.url}/inventory/products?sleep=0.05", timeout=10)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(call, range(16)))
    assert [r.status_code for r in responses] == [200] * 16
    ports = {tuple(r.json()["client"]) for r in responses}
    assert 1 < len(ports) <= MAX_CONNECTIONS


# --- CORS, probes, metrics ----------------------------------------------------------------


def test_cors_preflight_is_answered_for_the_web_apps(gateway: Gateway) -> None:
    response = gateway.client.options(
        "/orders",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


def test_cors_preflight_from_another_origin_is_refused(gateway: Gateway) -> None:
    response = gateway.client.options(
        "/orders",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_cors_headers_on_answers_are_the_gateways_only(gateway: Gateway) -> None:
    response = gateway.client.get("/inventory/products", headers={"Origin": ORIGIN})
    assert response.headers.get_list("access-control-allow-origin") == [ORIGIN]
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


def test_probes_answer_without_upstreams(gateway: Gateway) -> None:
    assert gateway.client.get("/healthz").json() == {"status": "ok"}
    ready = gateway.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_metrics_count_proxied_requests_by_upstream_and_status(gateway: Gateway) -> None:
    gateway.client.get("/inventory/products")
    gateway.client.get("/notifications", headers=gateway.auth())
    text = gateway.client.get("/metrics").text
    assert 'gateway_upstream_requests_total{status="2xx",upstream="inventory"}' in text
    assert 'gateway_upstream_requests_total{status="unavailable",upstream="notifications"}' in text
    assert 'gateway_upstream_duration_seconds_count{upstream="inventory"}' in text
    assert 'route="/inventory/{path:path}"' in text


# --- redirects ----------------------------------------------------------------------------


def test_a_trailing_slash_redirect_never_reveals_the_upstreams_address(
    redis_server: RedisServer,
) -> None:
    # A real service's routes: Starlette answers a trailing slash with a redirect built from
    # the Host it was called on, the upstream's internal address.
    service = FastAPI()

    @service.get("/orders")
    def orders() -> list[str]:
        return []

    @service.get("/inventory/products")
    def products() -> list[str]:
        return []

    with UvicornThread(service) as upstream:
        settings = Settings(
            APP_ENV="test",
            **token_env(),
            REDIS_URL=redis_server.url,
            ORDER_SERVICE_URL=upstream.url,
            INVENTORY_SERVICE_URL=upstream.url,
        )
        with (
            UvicornThread(create_app(settings)) as server,
            httpx.Client(base_url=server.url, timeout=10) as client,
        ):
            user = Principal(user_id="user-1", email="a@example.com", role="USER")
            headers = {"Authorization": f"Bearer {sign(settings, user)}"}
            for path, expected in [
                ("/inventory/products/", "/inventory/products"),
                ("/orders/?page=2", "/orders?page=2"),
            ]:
                response = client.get(path, headers=headers)
                assert response.status_code == 307
                assert response.headers["location"] == expected
                assert f":{upstream.port}" not in str(response.headers)
                followed = client.get(response.headers["location"], headers=headers)
                assert followed.status_code == 200
