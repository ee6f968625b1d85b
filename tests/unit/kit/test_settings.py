from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.kit.settings import ServiceSettings


def test_seed_variable_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "4100")
    monkeypatch.setenv("DB_HOST", "db.internal")
    monkeypatch.setenv("DB_PORT", "6543")
    monkeypatch.setenv("KAFKA_BROKER", "kafka:9092")
    monkeypatch.setenv("RABBITMQ_URL", "amqp://u:p@rabbit:5672/")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/1")
    settings = ServiceSettings()
    assert settings.port == 4100
    assert (settings.db_host, settings.db_port) == ("db.internal", 6543)
    assert settings.kafka_broker == "kafka:9092"
    assert settings.rabbitmq_url == "amqp://u:p@rabbit:5672/"
    assert settings.redis_url == "redis://cache:6379/1"
    assert "host=db.internal" in settings.db_conninfo
    assert "port=6543" in settings.db_conninfo


@pytest.mark.parametrize("secret", ["your-secret-key", "changeme", "short-but-real"])
def test_placeholder_or_short_secret_is_refused_in_production(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("JWT_SECRET", secret)
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        ServiceSettings()


def test_default_secret_is_refused_outside_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "test")
    monkeypatch.delenv("JWT_SECRET", raising=False)
    with pytest.raises(ValidationError):
        ServiceSettings()


def test_real_secret_is_accepted_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("JWT_SECRET", "x" * 40)
    assert ServiceSettings().environment == "production"
