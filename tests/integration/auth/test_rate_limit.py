"""Rate limits in Redis: logins per client address (attempts) and per email and address
(failures), registrations per client address."""

from __future__ import annotations

import httpx
import pytest

from devstack.ports import free_port
from services.auth.passwords import Passwords
from services.auth.settings import Settings
from tests.integration.auth.conftest import ClientFactory, SettingsFactory
from tests.integration.auth.support import PASSWORD, random_address, register, unique_email

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def attempt(
    client: httpx.AsyncClient,
    email: str,
    password: str = "wrong password",  # noqa: S107 - a deliberately wrong one
    forwarded_for: str | None = None,
) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return await client.post(
        "/auth/login", json={"email": email, "password": password}, headers=headers
    )


async def test_failed_logins_per_email_are_limited_with_retry_after(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    email = unique_email()
    await register(client, email)
    for _ in range(settings.login_email_max_failures):
        assert (await attempt(client, email)).status_code == 401

    limited = await attempt(client, email, password=PASSWORD)
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    retry_after = int(limited.headers["retry-after"])
    assert 0 < retry_after <= settings.login_email_window_seconds
    assert limited.json()["status"] == 429

    # The limit is on the email, whatever the case it is typed in.
    assert (await attempt(client, email.upper(), password=PASSWORD)).status_code == 429
    # Other accounts are not affected.
    other = unique_email()
    await register(client, other)
    assert (await attempt(client, other, password=PASSWORD)).status_code == 200


async def test_unknown_emails_are_limited_like_known_ones(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    email = unique_email("nobody")
    for _ in range(settings.login_email_max_failures):
        assert (await attempt(client, email)).status_code == 401
    assert (await attempt(client, email)).status_code == 429


async def test_a_successful_login_clears_the_email_failures(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    email = unique_email()
    await register(client, email)
    below_limit = settings.login_email_max_failures - 1
    for _ in range(below_limit):
        assert (await attempt(client, email)).status_code == 401
    assert (await attempt(client, email, password=PASSWORD)).status_code == 200
    for _ in range(below_limit):
        assert (await attempt(client, email)).status_code == 401
    assert (await attempt(client, email, password=PASSWORD)).status_code == 200


async def test_attempts_per_forwarded_address_are_limited_behind_a_trusted_proxy(
    make_settings: SettingsFactory, start_client: ClientFactory
) -> None:
    settings = make_settings(LOGIN_ADDRESS_MAX_ATTEMPTS=3, LOGIN_ADDRESS_WINDOW_SECONDS=30)
    blocked, neighbour = random_address(), random_address()
    async with start_client(settings, peer="127.0.0.1") as gateway:
        email = unique_email()
        await register(gateway, email)
        for _ in range(3):
            response = await attempt(gateway, email, PASSWORD, forwarded_for=blocked)
            assert response.status_code == 200
        limited = await attempt(gateway, email, PASSWORD, forwarded_for=blocked)
        assert limited.status_code == 429
        assert 0 < int(limited.headers["retry-after"]) <= 30

        # A client cannot escape by prepending its own X-Forwarded-For entry: the proxy's
        # (rightmost untrusted) one counts.
        spoofed = await attempt(
            gateway, email, PASSWORD, forwarded_for=f"{random_address()}, {blocked}"
        )
        assert spoofed.status_code == 429
        neighbour_login = await attempt(gateway, email, PASSWORD, forwarded_for=neighbour)
        assert neighbour_login.status_code == 200


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(
    make_settings: SettingsFactory, start_client: ClientFactory
) -> None:
    settings = make_settings(LOGIN_ADDRESS_MAX_ATTEMPTS=3)
    async with start_client(settings) as direct:
        email = unique_email()
        await register(direct, email)
        statuses = [
            (await attempt(direct, email, PASSWORD, forwarded_for=random_address())).status_code
            for _ in range(4)
        ]
    assert statuses == [200, 200, 200, 429]


async def test_a_stranger_cannot_lock_the_owner_out(
    settings: Settings, start_client: ClientFactory
) -> None:
    stranger, owner = random_address(), random_address()
    async with start_client(settings, peer="127.0.0.1") as gateway:
        email = unique_email()
        await register(gateway, email)
        for _ in range(settings.login_email_max_failures + 2):
            response = await attempt(gateway, email, forwarded_for=stranger)
            assert response.status_code in (401, 429)
        # The stranger is locked out of this account, even with the right password...
        locked = await attempt(gateway, email, PASSWORD, forwarded_for=stranger)
        assert locked.status_code == 429
        # ...but the owner, from their own address, is not.
        owned = await attempt(gateway, email, PASSWORD, forwarded_for=owner)
        assert owned.status_code == 200, owned.text


async def registration(
    client: httpx.AsyncClient, email: str, forwarded_for: str | None = None
) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return await client.post(
        "/auth/register",
        json={"email": email, "password": PASSWORD, "name": "Ada"},
        headers=headers,
    )


async def test_registrations_per_address_are_limited_with_retry_after(
    make_settings: SettingsFactory, start_client: ClientFactory
) -> None:
    settings = make_settings(REGISTER_ADDRESS_MAX_ATTEMPTS=3, REGISTER_ADDRESS_WINDOW_SECONDS=600)
    blocked, neighbour = random_address(), random_address()
    async with start_client(settings, peer="127.0.0.1") as gateway:
        taken = unique_email()
        statuses = [
            (await registration(gateway, email, forwarded_for=blocked)).status_code
            for email in (taken, unique_email(), taken)
        ]
        # Duplicates count as attempts too.
        assert statuses == [201, 201, 409]
        limited = await registration(gateway, unique_email(), forwarded_for=blocked)
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert 0 < int(limited.headers["retry-after"]) <= 600

        spoofed = await registration(
            gateway, unique_email(), forwarded_for=f"{random_address()}, {blocked}"
        )
        assert spoofed.status_code == 429
        neighbours = await registration(gateway, unique_email(), forwarded_for=neighbour)
        assert neighbours.status_code == 201


async def test_neither_a_taken_email_nor_a_limited_registration_costs_a_hash(
    make_settings: SettingsFactory, start_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[str] = []
    real_hash = Passwords.hash

    async def counting_hash(self: Passwords, password: str) -> str:
        hashed.append(password)
        return await real_hash(self, password)

    monkeypatch.setattr(Passwords, "hash", counting_hash)
    settings = make_settings(REGISTER_ADDRESS_MAX_ATTEMPTS=3)
    async with start_client(settings) as client:
        hashed.clear()  # the start-up's throwaway hash
        email = unique_email()
        assert (await registration(client, email)).status_code == 201
        assert len(hashed) == 1
        assert (await registration(client, email.upper())).status_code == 409
        assert (await registration(client, email)).status_code == 409
        assert (await registration(client, unique_email())).status_code == 429
        assert len(hashed) == 1


async def test_login_and_registration_are_refused_when_redis_is_down(
    make_settings: SettingsFactory, start_client: ClientFactory
) -> None:
    settings = make_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    async with start_client(settings) as client:
        email = unique_email()
        refused = await registration(client, email)
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        response = await attempt(client, email, PASSWORD)
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["postgres"] == "ok"
        assert ready.json()["checks"]["redis"] != "ok"
