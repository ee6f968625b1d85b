"""How the Kafka clients' security settings are read from the environment (pure)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.kit.kafka import KafkaSecurity


def test_unset_is_plaintext() -> None:
    assert KafkaSecurity().client_config() == {"security.protocol": "PLAINTEXT"}


def test_sasl_over_tls_names_every_property(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "orders")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("KAFKA_SSL_CA_LOCATION", "/etc/realtimeorder/kafka-ca/ca.crt")
    security = KafkaSecurity()
    assert security.client_config() == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "orders",
        "sasl.password": "s3cret",
        "ssl.ca.location": "/etc/realtimeorder/kafka-ca/ca.crt",
    }
    assert "s3cret" not in repr(security)


def test_tls_alone_takes_the_ca_and_no_sasl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_CA_LOCATION", "/ca.crt")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "ignored")
    assert KafkaSecurity().client_config() == {
        "security.protocol": "SSL",
        "ssl.ca.location": "/ca.crt",
    }


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN"},
            "KAFKA_SASL_USERNAME",
        ),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
    ],
)
def test_an_incomplete_setting_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], says: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=says):
        KafkaSecurity()
