"""Only genuine, current access tokens are accepted; identity headers count for nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.auth.settings import Settings
from services.kit.keys import SigningKey, generate_pem_pair
from services.kit.tokens import Principal, issue_access_token
from tests.integration.auth.support import bearer, login, register, unique_email
from tests.signing import PUBLIC_KEY_PEM

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

PROTECTED = [
    ("GET", "/auth/verify"),
    ("GET", "/auth/users"),
    ("PATCH", "/auth/users/00000000-0000-0000-0000-000000000000/role"),
]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value).encode())


def unb64url_json(part: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


async def call(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    return await client.request(method, path, headers=headers, json={"role": "ADMIN"})


async def registered_principal(client: httpx.AsyncClient) -> tuple[Principal, str]:
    email = unique_email()
    user = await register(client, email)
    token = (await login(client, email))["accessToken"]
    return Principal(user_id=user["id"], email=email, role="USER"), token


async def test_an_expired_token_is_401(client: httpx.AsyncClient, settings: Settings) -> None:
    principal, _ = await registered_principal(client)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    expired = issue_access_token(settings, settings.signing_key, principal, now=an_hour_ago)
    response = await client.get("/auth/verify", headers=bearer(expired))
    assert response.status_code == 401
    assert response.json()["detail"] == "The access token has expired."


async def test_a_tampered_token_is_401(client: httpx.AsyncClient) -> None:
    _, token = await registered_principal(client)
    header, payload, signature = token.split(".")
    claims = unb64url_json(payload)
    claims["role"] = "ADMIN"
    tampered = f"{header}.{b64url_json(claims)}.{signature}"
    for method, path in PROTECTED:
        response = await call(client, method, path, bearer(tampered))
        assert response.status_code == 401, (method, path)


async def test_an_alg_none_token_is_401(client: httpx.AsyncClient, settings: Settings) -> None:
    _principal, token = await registered_principal(client)
    claims = unb64url_json(token.split(".")[1])
    claims["role"] = "ADMIN"
    for alg in ("none", "None", "NONE"):
        unsigned = f"{b64url_json({'alg': alg, 'typ': 'JWT'})}.{b64url_json(claims)}."
        for method, path in PROTECTED:
            response = await call(client, method, path, bearer(unsigned))
            assert response.status_code == 401, (alg, method, path)


async def test_a_token_signed_with_another_key_is_401(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    principal, _ = await registered_principal(client)
    admin = Principal(principal.user_id, principal.email, "ADMIN")
    other = SigningKey.from_pem(generate_pem_pair()[0])
    for key in (other, SigningKey(other.private_key, settings.signing_key.kid)):
        forged = issue_access_token(settings, key, admin)
        for method, path in PROTECTED:
            response = await call(client, method, path, bearer(forged))
            assert response.status_code == 401, (key.kid, method, path)


async def test_an_hs256_token_keyed_with_the_public_key_is_401(client: httpx.AsyncClient) -> None:
    """Algorithm confusion: the public key is published, so an HMAC made with it proves nothing."""
    _principal, token = await registered_principal(client)
    header = unb64url_json(token.split(".")[0]) | {"alg": "HS256"}
    claims = unb64url_json(token.split(".")[1]) | {"role": "ADMIN"}
    signed = f"{b64url_json(header)}.{b64url_json(claims)}"
    mac = hmac.new(PUBLIC_KEY_PEM.encode(), signed.encode(), hashlib.sha256).digest()
    for method, path in PROTECTED:
        response = await call(client, method, path, bearer(f"{signed}.{b64url(mac)}"))
        assert response.status_code == 401, (method, path)


async def test_forged_identity_headers_without_a_token_are_401(
    client: httpx.AsyncClient,
) -> None:
    principal, _ = await registered_principal(client)
    forged = {
        "X-User-Id": principal.user_id,
        "X-User-Email": principal.email,
        "X-User-Role": "ADMIN",
        "X-Forwarded-User": principal.email,
    }
    for method, path in PROTECTED:
        response = await call(client, method, path, forged)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"


async def test_forged_identity_headers_do_not_lift_a_users_role(
    client: httpx.AsyncClient,
) -> None:
    principal, token = await registered_principal(client)
    headers = {**bearer(token), "X-User-Id": principal.user_id, "X-User-Role": "ADMIN"}
    for method, path in PROTECTED[1:]:
        response = await call(client, method, path, headers)
        assert response.status_code == 403, (method, path)


async def test_a_non_bearer_authorization_is_401(client: httpx.AsyncClient) -> None:
    _, token = await registered_principal(client)
    response = await client.get("/auth/verify", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 401
