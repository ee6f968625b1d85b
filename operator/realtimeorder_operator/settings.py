"""The operator's settings, read once from environment variables.

Backing-service variables keep the platform's names (KAFKA_BROKER); the RabbitMQ management API
takes a URL and its own credentials because the operator declares queues over HTTP, not AMQP.
Setting STRIMZI_KAFKA_CLUSTER or RABBITMQ_TOPOLOGY_CLUSTER switches EventTopics or
NotificationQueues from the admin APIs to rendering the Strimzi or RabbitMQ topology operator's
custom resources.
"""

from __future__ import annotations

from functools import cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    def kafka_security(self) -> dict[str, str]:
        """The Kafka clients' security properties (none beyond the protocol for plaintext)."""
        config = {"security.protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol.startswith("SASL_") and self.kafka_sasl_mechanism:
            config["sasl.mechanism"] = self.kafka_sasl_mechanism
            if self.kafka_sasl_username and self.kafka_sasl_password:
                config["sasl.username"] = self.kafka_sasl_username
                config["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_ca_location and self.kafka_security_protocol.endswith("SSL"):
            config["ssl.ca.location"] = self.kafka_ssl_ca_location
        return config

    kafka_broker: str = Field(default="127.0.0.1:9092", alias="KAFKA_BROKER")
    kafka_timeout_seconds: float = Field(default=10.0, alias="KAFKA_TIMEOUT_SECONDS", gt=0)
    strimzi_kafka_cluster: str | None = Field(default=None, alias="STRIMZI_KAFKA_CLUSTER")
    # An external Kafka over TLS or SASL: librdkafka's properties under the services' names.
    kafka_security_protocol: str = Field(default="PLAINTEXT", alias="KAFKA_SECURITY_PROTOCOL")
    kafka_sasl_mechanism: str | None = Field(default=None, alias="KAFKA_SASL_MECHANISM")
    kafka_sasl_username: str | None = Field(default=None, alias="KAFKA_SASL_USERNAME")
    kafka_sasl_password: SecretStr | None = Field(default=None, alias="KAFKA_SASL_PASSWORD")
    kafka_ssl_ca_location: str | None = Field(default=None, alias="KAFKA_SSL_CA_LOCATION")

    rabbitmq_management_url: str = Field(
        default="http://127.0.0.1:15672", alias="RABBITMQ_MANAGEMENT_URL"
    )
    rabbitmq_user: str = Field(default="guest", alias="RABBITMQ_USER")
    rabbitmq_password: SecretStr = Field(default=SecretStr("guest"), alias="RABBITMQ_PASSWORD")
    rabbitmq_timeout_seconds: float = Field(default=10.0, alias="RABBITMQ_TIMEOUT_SECONDS", gt=0)
    rabbitmq_topology_cluster: str | None = Field(default=None, alias="RABBITMQ_TOPOLOGY_CLUSTER")

    watch_namespace: str = Field(
        default="",
        alias="WATCH_NAMESPACE",
        description="Comma-separated namespaces to watch; empty watches every namespace.",
    )
    reconcile_interval_seconds: float = Field(
        default=60.0,
        alias="RECONCILE_INTERVAL_SECONDS",
        gt=0,
        description="How often topics and queues are re-checked for drift and queue counts read.",
    )
    autoscaler_interval_seconds: float = Field(
        default=15.0, alias="AUTOSCALER_INTERVAL_SECONDS", gt=0
    )
    retry_delay_seconds: float = Field(
        default=15.0,
        alias="RETRY_DELAY_SECONDS",
        gt=0,
        description="Delay before retrying after a backing service was unreachable.",
    )
    cleanup_attempts: int = Field(
        default=5,
        alias="CLEANUP_ATTEMPTS",
        ge=1,
        description="Failed attempts at a deletion's cleanup before the resource reports "
        "Ready=False (CleanupFailed) with the way out; it is then retried every "
        "RECONCILE_INTERVAL_SECONDS.",
    )
    health_port: int = Field(default=8080, alias="HEALTH_PORT")
    metrics_port: int = Field(default=9090, alias="METRICS_PORT")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")

    @property
    def namespaces(self) -> list[str]:
        return [ns.strip() for ns in self.watch_namespace.split(",") if ns.strip()]

    @property
    def strimzi_mode(self) -> bool:
        return bool(self.strimzi_kafka_cluster)

    @property
    def topology_mode(self) -> bool:
        return bool(self.rabbitmq_topology_cluster)


@cache
def get_settings() -> OperatorSettings:
    return OperatorSettings()
