from __future__ import annotations

import pytest

from realtimeorder_operator.settings import OperatorSettings


def test_defaults_use_the_admin_apis_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STRIMZI_KAFKA_CLUSTER", "RABBITMQ_TOPOLOGY_CLUSTER", "WATCH_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    settings = OperatorSettings()
    assert not settings.strimzi_mode
    assert not settings.topology_mode
    assert settings.namespaces == []


def test_environment_selects_modes_and_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIMZI_KAFKA_CLUSTER", "events")
    monkeypatch.setenv("RABBITMQ_TOPOLOGY_CLUSTER", "rabbit")
    monkeypatch.setenv("WATCH_NAMESPACE", " shop, ops ,")
    monkeypatch.setenv("KAFKA_BROKER", "kafka:9092")
    monkeypatch.setenv("RABBITMQ_PASSWORD", "s3cret")
    settings = OperatorSettings()
    assert settings.strimzi_mode
    assert settings.topology_mode
    assert settings.namespaces == ["shop", "ops"]
    assert settings.kafka_broker == "kafka:9092"
    assert settings.rabbitmq_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_intervals_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOSCALER_INTERVAL_SECONDS", "0")
    with pytest.raises(ValueError, match="AUTOSCALER_INTERVAL_SECONDS"):
        OperatorSettings()


def test_the_operator_reaches_an_external_kafka_over_sasl_and_tls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "operator",
        "KAFKA_SASL_PASSWORD": "s3cret",
        "KAFKA_SSL_CA_LOCATION": "/etc/realtimeorder/kafka-ca/ca.crt",
    }.items():
        monkeypatch.setenv(name, value)
    assert OperatorSettings().kafka_security() == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "operator",
        "sasl.password": "s3cret",
        "ssl.ca.location": "/etc/realtimeorder/kafka-ca/ca.crt",
    }
