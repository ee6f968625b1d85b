"""The auth service's settings."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from services.auth.settings import Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "TRUSTED_PROXIES", "ADMIN_EMAIL", "ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.port == 3001
    assert settings.service_name == "auth"
    assert settings.admin_email is None
    assert settings.admin_password is None
    assert ipaddress.ip_address("127.0.0.1") in settings.trusted_proxy_networks[0]


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_EMAIL", "root@example.com")
    monkeypatch.setenv("ADMIN_PASSWORD", "s3cret-password")
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1")
    settings = Settings()
    assert settings.admin_email == "root@example.com"
    assert settings.admin_password is not None
    assert settings.admin_password.get_secret_value() == "s3cret-password"
    assert "s3cret" not in repr(settings)
    assert settings.trusted_proxy_networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.0.2.1/32"),
    )


def test_a_bad_trusted_proxy_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="TRUSTED_PROXIES"):
        Settings(TRUSTED_PROXIES="127.0.0.1,gateway.local")


def test_password_hash_slots_follow_the_argon2_memory_cost() -> None:
    assert Settings().password_hash_slots == 4
    assert Settings(ARGON2_MEMORY_COST_KIB=128 * 1024).password_hash_slots == 2
    assert Settings(ARGON2_MEMORY_COST_KIB=1024 * 1024).password_hash_slots == 1
    assert Settings(PASSWORD_HASH_CONCURRENCY=7).password_hash_slots == 7
    with pytest.raises(ValidationError, match="PASSWORD_HASH_CONCURRENCY"):
        Settings(PASSWORD_HASH_CONCURRENCY=0)
