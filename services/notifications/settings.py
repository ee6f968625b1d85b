"""Settings of the notifications service and of its channel workers (environment variables;
the seed's names keep working)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from services.kit.settings import (
    GATHERING_BATCH_WAIT_MS,
    EventServiceSettings,
    ServiceSettings,
    consumer_batch_wait,
)
from services.notifications.topology import MAX_ATTEMPTS, RETRY_DELAYS_SECONDS


def _delays(value: object) -> object:
    if isinstance(value, str):
        return [int(part) for part in value.split(",") if part.strip()]
    return value


class QueueSettings(ServiceSettings):
    """What the service and the workers must agree on with the queues (and the chart's
    NotificationQueues): the retry delays, which name the retry queues, and the attempts."""

    retry_delays_seconds: Annotated[tuple[int, ...], NoDecode] = Field(
        default=RETRY_DELAYS_SECONDS, alias="RETRY_DELAYS_SECONDS", min_length=1
    )
    max_attempts: int = Field(default=MAX_ATTEMPTS, alias="MAX_ATTEMPTS", ge=1, le=50)

    _parse_delays = field_validator("retry_delays_seconds", mode="before")(_delays)

    @field_validator("retry_delays_seconds")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(delay <= 0 for delay in value):
            raise ValueError("retry delays are whole seconds above 0")
        return value


class Settings(QueueSettings, EventServiceSettings):
    """The notifications service's settings.

    - RABBITMQ_URL (kit): the broker the deliveries are published to.
    - DECLARE_QUEUES: declare the queues of `topology.py` at start (the default, for `make up`
      and tests); false where someone else owns them (the operator's NotificationQueues in the
      chart), in which case the service only checks that they exist.
    - RELAY_BATCH_SIZE: deliveries published per relay round (one transaction).
    - PREFERENCES_CACHE_SIZE: users whose preferences the consumer keeps in memory (checked
      against the stored row by the statement that uses them; 0 reads them for every event).
    - RUN_RELAY, RUN_CONSUMERS, KAFKA_CONSUMER_GROUP: see `EventServiceSettings`; RUN_RELAY runs
      the delivery relay to RabbitMQ (this service has no Kafka outbox relay); RUN_CONSUMERS
      also runs the dead-letter archiver.
    """

    service_name: str = "notifications"
    port: int = Field(default=3004, alias="PORT")
    consumer_batch_wait_ms: int = consumer_batch_wait(GATHERING_BATCH_WAIT_MS)

    declare_queues: bool = Field(default=True, alias="DECLARE_QUEUES")
    relay_batch_size: int = Field(default=200, alias="RELAY_BATCH_SIZE", gt=0, le=5000)
    preferences_cache_size: int = Field(default=10_000, alias="PREFERENCES_CACHE_SIZE", ge=0)


SmtpTls = Literal["none", "starttls", "tls"]


class WorkerSettings(QueueSettings):
    """A channel worker's settings (`realtimeorder worker email|sms|push`).

    The database is the notifications service's (the worker records each attempt there); the
    worker applies none of its migrations. PORT serves /healthz, /readyz and /metrics.
    """

    service_name: str = "notifications-worker"
    port: int = Field(default=3011, alias="PORT")
    db_pool_max: int = Field(default=4, alias="DB_POOL_MAX")

    prefetch: int = Field(default=200, alias="WORKER_PREFETCH", ge=1, le=5000)
    """Unacknowledged messages a worker holds at once (what it works on and what waits)."""
    concurrency: int = Field(default=32, alias="WORKER_CONCURRENCY", ge=1, le=1000)
    """Sends in flight at once (SMTP connections; HTTP requests)."""
    batch_size: int = Field(default=100, alias="WORKER_BATCH_SIZE", ge=1, le=1000)
    """Messages claimed and recorded per database round trip."""
    batch_linger_ms: float = Field(default=5.0, alias="WORKER_BATCH_LINGER_MS", ge=0, le=1000)
    """How long a batch waits after its first message for more (latency traded for batches)."""
    provider_timeout_seconds: float = Field(default=10.0, alias="PROVIDER_TIMEOUT_SECONDS", gt=0)

    smtp_host: str = Field(default="127.0.0.1", alias="SMTP_HOST")
    smtp_port: int = Field(default=1025, alias="SMTP_PORT")
    smtp_username: str | None = Field(default=None, alias="SMTP_USERNAME")
    smtp_password: str | None = Field(default=None, alias="SMTP_PASSWORD")
    smtp_tls: SmtpTls = Field(default="none", alias="SMTP_TLS")
    mail_from: str = Field(
        default="RealTimeOrder <no-reply@realtimeorder.local>", alias="MAIL_FROM"
    )

    sms_provider_url: str = Field(default="http://127.0.0.1:8026/sms", alias="SMS_PROVIDER_URL")
    sms_provider_token: str | None = Field(default=None, alias="SMS_PROVIDER_TOKEN")
    push_provider_url: str = Field(default="http://127.0.0.1:8026/push", alias="PUSH_PROVIDER_URL")
    push_provider_token: str | None = Field(default=None, alias="PUSH_PROVIDER_TOKEN")

    @property
    def claim_timeout_seconds(self) -> float:
        """How long a claim holds off other copies of a message: the longest a send can take."""
        return self.provider_timeout_seconds + 5.0

    @model_validator(mode="after")
    def _require_verifying_keys(self) -> Self:
        return self  # a worker verifies no tokens: JWT_PUBLIC_KEY is not its concern
