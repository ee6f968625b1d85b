"""Helpers shared by the auth integration tests."""

from __future__ import annotations

import ipaddress
import secrets
import uuid
from typing import Any

import httpx

PASSWORD = "correct horse battery staple"


def random_address() -> str:
    """An address in 10.0.0.0/8 nobody else in the session will use."""
    return str(ipaddress.IPv4Address(0x0A000000 + secrets.randbelow(2**24)))


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


async def register(
    client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/auth/register",
        json={"email": email or unique_email(), "password": password, "name": "Ada", **extra},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
