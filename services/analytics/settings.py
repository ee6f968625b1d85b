"""Settings of the analytics service (environment variables; the kit's names keep working)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from pydantic import Field

from services.kit.settings import GATHERING_BATCH_WAIT_MS, EventServiceSettings, consumer_batch_wait


class Settings(EventServiceSettings):
    """The analytics service's settings.

    - PROMETHEUS_URL: the Prometheus whose HTTP API answers the rates and recent figures;
      PROMETHEUS_TIMEOUT_SECONDS bounds each query (an unreachable Prometheus costs a report
      no more than that, and the report says so).
    - RABBITMQ_MANAGEMENT_URL: the RabbitMQ management API the queue monitor reads; by
      default RABBITMQ_URL's host on port 15672, with RABBITMQ_URL's user and password unless
      RABBITMQ_MANAGEMENT_USER / RABBITMQ_MANAGEMENT_PASSWORD are set.
    - MONITOR_TIMEOUT_SECONDS: the longest the Kafka and RabbitMQ monitors wait on a broker.
    - RUN_CONSUMERS, KAFKA_CONSUMER_GROUP: see `EventServiceSettings` (the projection's
      consumer); this service emits no events.
    """

    service_name: str = "analytics"
    port: int = Field(default=3005, alias="PORT")
    consumer_batch_wait_ms: int = consumer_batch_wait(GATHERING_BATCH_WAIT_MS)

    prometheus_url: str = Field(default="http://127.0.0.1:9090", alias="PROMETHEUS_URL")
    prometheus_timeout_seconds: float = Field(
        default=2.0, alias="PROMETHEUS_TIMEOUT_SECONDS", gt=0, le=30
    )
    rabbitmq_management_url: str | None = Field(default=None, alias="RABBITMQ_MANAGEMENT_URL")
    rabbitmq_management_user: str | None = Field(default=None, alias="RABBITMQ_MANAGEMENT_USER")
    rabbitmq_management_password: str | None = Field(
        default=None, alias="RABBITMQ_MANAGEMENT_PASSWORD"
    )
    monitor_timeout_seconds: float = Field(default=5.0, alias="MONITOR_TIMEOUT_SECONDS", gt=0)

    @property
    def management_url(self) -> str:
        if self.rabbitmq_management_url:
            return self.rabbitmq_management_url.rstrip("/")
        amqp = urlsplit(self.rabbitmq_url)
        return f"http://{amqp.hostname or '127.0.0.1'}:15672"

    @property
    def management_auth(self) -> tuple[str, str]:
        amqp = urlsplit(self.rabbitmq_url)
        user = self.rabbitmq_management_user or unquote(amqp.username or "guest")
        password = self.rabbitmq_management_password or unquote(amqp.password or "guest")
        return user, password

    @property
    def vhost(self) -> str:
        """The virtual host of RABBITMQ_URL: the queues the monitor shows are this one's."""
        path = urlsplit(self.rabbitmq_url).path
        return unquote(path[1:]) if len(path) > 1 else "/"
