from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from services.auth.settings import DEVELOPMENT_PRIVATE_KEY
from services.auth.settings import Settings as AuthSettings
from services.kit.settings import DEVELOPMENT_PUBLIC_KEY, ServiceSettings
from tests.signing import PRIVATE_KEY_PEM, PUBLIC_KEY_PEM, SIGNING_KEY


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


def test_a_service_without_a_verification_key_refuses_to_start_outside_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(ValidationError, match="no token verification key: set JWT_PUBLIC_KEY"):
        ServiceSettings()


def test_auth_without_a_signing_key_refuses_to_start_outside_development() -> None:
    with pytest.raises(ValidationError, match="no token signing key: set JWT_PRIVATE_KEY"):
        AuthSettings(APP_ENV="production", JWT_PUBLIC_KEY=PUBLIC_KEY_PEM)


def test_the_development_keys_are_refused_outside_development() -> None:
    with pytest.raises(ValidationError, match="development key"):
        ServiceSettings(APP_ENV="test", JWT_PUBLIC_KEY=DEVELOPMENT_PUBLIC_KEY)
    with pytest.raises(ValidationError, match="development key"):
        AuthSettings(APP_ENV="test", JWT_PRIVATE_KEY=DEVELOPMENT_PRIVATE_KEY)


def test_development_falls_back_to_the_development_key_pair() -> None:
    signing = AuthSettings(APP_ENV="development").signing_key
    assert ServiceSettings(APP_ENV="development").verifying_keys.keys() == {signing.kid}


@pytest.mark.parametrize(
    "value",
    [
        "not a key",
        PRIVATE_KEY_PEM,  # the private key where the public one belongs
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
    ],
)
def test_an_unusable_verification_key_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="token keys are not usable"):
        ServiceSettings(APP_ENV="development", JWT_PUBLIC_KEY=value)


def test_an_rsa_key_is_refused() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValidationError, match="not an Ed25519 key"):
        ServiceSettings(APP_ENV="test", JWT_PUBLIC_KEY=pem.decode())


def test_keys_are_read_from_files(tmp_path: Path) -> None:
    (tmp_path / "private.pem").write_text(PRIVATE_KEY_PEM)
    (tmp_path / "public.pem").write_text(PUBLIC_KEY_PEM)
    auth = AuthSettings(APP_ENV="production", JWT_PRIVATE_KEY_FILE=tmp_path / "private.pem")
    orders = ServiceSettings(APP_ENV="production", JWT_PUBLIC_KEY_FILE=tmp_path / "public.pem")
    assert auth.signing_key.kid == SIGNING_KEY.kid
    assert orders.verifying_keys.keys() == {SIGNING_KEY.kid}


def test_a_missing_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="JWT_PUBLIC_KEY_FILE cannot be read"):
        ServiceSettings(APP_ENV="production", JWT_PUBLIC_KEY_FILE=tmp_path / "absent.pem")


def test_a_certificate_gives_its_public_key() -> None:
    """The chart hands the verifiers a certificate: Helm cannot print a bare public key."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token-signing")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(SIGNING_KEY.public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=2))
        .not_valid_after(now - timedelta(days=1))  # expired: only its key counts
        .sign(SIGNING_KEY.private_key, algorithm=None)
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    settings = ServiceSettings(APP_ENV="production", JWT_PUBLIC_KEY=pem)
    assert settings.verifying_keys.keys() == {SIGNING_KEY.kid}


def test_consumers_no_order_waits_on_gather_their_fetches_and_the_others_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.analytics.settings import Settings as AnalyticsSettings
    from services.inventory.settings import Settings as InventorySettings
    from services.notifications.settings import Settings as NotificationsSettings
    from services.orders.settings import Settings as OrdersSettings

    assert OrdersSettings().consumer_batch_wait_ms == 0
    assert InventorySettings().consumer_batch_wait_ms == 0
    assert NotificationsSettings().consumer_batch_wait_ms == 100
    assert AnalyticsSettings().consumer_batch_wait_ms == 100
    monkeypatch.setenv("CONSUMER_BATCH_WAIT_MS", "0")
    assert NotificationsSettings().consumer_batch_wait_ms == 0
    monkeypatch.setenv("CONSUMER_BATCH_WAIT_MS", "10000")
    with pytest.raises(ValidationError, match="CONSUMER_BATCH_WAIT_MS"):
        AnalyticsSettings()


def test_consumers_an_order_waits_on_gather_under_load_and_the_others_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.analytics.settings import Settings as AnalyticsSettings
    from services.inventory.settings import Settings as InventorySettings
    from services.kit.settings import BUSY_GATHER_MS
    from services.notifications.settings import Settings as NotificationsSettings
    from services.orders.settings import Settings as OrdersSettings

    assert OrdersSettings().consumer_busy_gather_ms == BUSY_GATHER_MS > 0
    assert InventorySettings().consumer_busy_gather_ms == BUSY_GATHER_MS
    assert NotificationsSettings().consumer_busy_gather_ms == 0
    assert AnalyticsSettings().consumer_busy_gather_ms == 0
    monkeypatch.setenv("CONSUMER_BUSY_GATHER_MS", "0")
    assert OrdersSettings().consumer_busy_gather_ms == 0
    monkeypatch.setenv("CONSUMER_BUSY_GATHER_MS", "5000")
    with pytest.raises(ValidationError, match="CONSUMER_BUSY_GATHER_MS"):
        InventorySettings()
