"""The gateway's settings accept the seed's variable names."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.gateway.settings import Settings
from services.registry import UPSTREAMS, Service


def test_defaults_follow_the_seed_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "AUTH_SERVICE_URL", "ORDER_SERVICE_URL", "CORS_ORIGINS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.port == 3000
    assert settings.upstream_url("auth") == "http://127.0.0.1:3001"
    assert settings.upstream_url("orders") == "http://127.0.0.1:3002"
    assert settings.upstream_url("inventory") == "http://127.0.0.1:3003"
    assert settings.upstream_url("notifications") == "http://127.0.0.1:3004"
    assert settings.upstream_url("analytics") == "http://127.0.0.1:3005"
    assert settings.upstream_timeout_seconds == 10
    assert settings.cors_origins == ["http://localhost:5173", "http://localhost:5174"]


def test_environment_variables_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_SERVICE_URL", "http://auth.internal:8080/")
    monkeypatch.setenv("UPSTREAM_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("CORS_ORIGINS", "https://shop.example.com, https://admin.example.com/")
    settings = Settings()
    assert settings.upstream_url("auth") == "http://auth.internal:8080"
    assert settings.upstream_timeout_seconds == 2.5
    assert settings.cors_origins == ["https://shop.example.com", "https://admin.example.com"]


def test_an_upstream_url_must_be_http() -> None:
    with pytest.raises(ValidationError):
        Settings(ORDER_SERVICE_URL="orders:3002")
    with pytest.raises(ValidationError, match="ORDER_SERVICE_URL must be an http:// URL"):
        Settings(ORDER_SERVICE_URL="https://orders:3002")


@pytest.mark.parametrize("upstream", UPSTREAMS, ids=lambda upstream: upstream.name)
def test_every_upstream_of_the_registry_is_read_from_its_variable(
    upstream: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert upstream.url_variable is not None
    monkeypatch.delenv(upstream.url_variable, raising=False)
    assert Settings().upstream_url(upstream.name) == upstream.local_url
    monkeypatch.setenv(upstream.url_variable, f"http://{upstream.name}.internal:8080/")
    assert Settings().upstream_url(upstream.name) == f"http://{upstream.name}.internal:8080"
