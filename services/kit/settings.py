"""Typed settings read from environment variables, shared by every service.

The seed's variable names (PORT, DB_HOST, KAFKA_BROKER, RABBITMQ_URL, REDIS_URL...) are the
field names, so they keep working unchanged. Each service subclasses `ServiceSettings` and adds
its own fields.

Tokens are verified with auth's public keys (JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE, see
kit/keys.py); only auth's settings take the private key. Outside development a service without
a verification key, or with the development key, refuses to start. In development, without a
key, the development key pair applies: its private half is in auth's settings, published here
like any placeholder, so it is refused everywhere else.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.kit.keys import InvalidKeyError, read_setting, verifying_keys

DEVELOPMENT_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAiDHbWRP9RywKITjjpDMipr9VCbDWK1vaI3sfTDVYfeU=
-----END PUBLIC KEY-----
"""
"""The public half of auth's development signing key: refused outside development."""

Environment = Literal["development", "test", "production"]


class ServiceSettings(BaseSettings):
    """Settings every service shares; subclasses add their own."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    environment: Environment = Field(default="development", alias="APP_ENV")
    service_name: str = "realtimeorder"
    host: str = Field(default="127.0.0.1", alias="HOST")
    port: int = Field(default=8000, alias="PORT")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    # How long the HTTP server keeps an idle keep-alive connection (uvicorn's default 5 s).
    # A client must drop an idle connection before the server does, or a request it sends as
    # the server closes the socket fails without an answer; the gateway's upstream pool drops
    # them at 4 s (UPSTREAM_KEEPALIVE_SECONDS), and the gateway itself waits longer.
    keep_alive_seconds: int = Field(default=5, alias="HTTP_KEEP_ALIVE_SECONDS", gt=0)

    db_host: str = Field(default="127.0.0.1", alias="DB_HOST")
    db_port: int = Field(default=5432, alias="DB_PORT")
    db_name: str = Field(default="realtimeorder", alias="DB_NAME")
    db_user: str = Field(default="postgres", alias="DB_USER")
    db_password: str = Field(default="postgres", alias="DB_PASSWORD")
    db_pool_min: int = Field(default=2, alias="DB_POOL_MIN")
    db_pool_max: int = Field(default=10, alias="DB_POOL_MAX")

    kafka_broker: str = Field(default="127.0.0.1:9092", alias="KAFKA_BROKER")
    # Partitions of the topics a service creates at start-up (the local stack; in a cluster
    # the operator's EventTopics own the topics).
    kafka_topic_partitions: int = Field(default=3, alias="KAFKA_TOPIC_PARTITIONS", gt=0)
    rabbitmq_url: str = Field(default="amqp://guest:guest@127.0.0.1:5672/", alias="RABBITMQ_URL")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", alias="REDIS_URL")

    # The after-commit runner (kit/after_commit.py): the longest one effect (a live push, a
    # cache invalidation) may take, and how many may wait before new ones are dropped.
    after_commit_timeout_seconds: float = Field(
        default=2.0, alias="AFTER_COMMIT_TIMEOUT_SECONDS", gt=0
    )
    after_commit_capacity: int = Field(default=10_000, alias="AFTER_COMMIT_CAPACITY", gt=0)

    jwt_public_key: str | None = Field(default=None, alias="JWT_PUBLIC_KEY")
    jwt_public_key_file: Path | None = Field(default=None, alias="JWT_PUBLIC_KEY_FILE")
    jwt_issuer: str = Field(default="realtimeorder", alias="JWT_ISSUER")
    access_token_ttl_seconds: int = Field(default=900, alias="ACCESS_TOKEN_TTL_SECONDS", gt=0)
    # Auth's revocation markers in Redis (kit/tokens.py, Revocations): how long one read is
    # trusted, so how late a revocation may take effect, and the longest a check waits on Redis
    # before it fails open.
    token_check_cache_seconds: float = Field(default=1.0, alias="TOKEN_CHECK_CACHE_SECONDS", ge=0)
    token_check_timeout_seconds: float = Field(
        default=0.5, alias="TOKEN_CHECK_TIMEOUT_SECONDS", gt=0
    )

    # When set, /metrics and the detailed /readyz are served on this port only (kit/web.py), a
    # port the ingress never routes; unset, the main port serves them as before.
    metrics_port: int | None = Field(default=None, alias="METRICS_PORT", gt=0, lt=65536)

    # The survivors of full garbage collections are frozen and thawed at least this often
    # (kit/heap.py); 0 never freezes.
    gc_thaw_seconds: float = Field(default=3600, alias="GC_THAW_SECONDS", ge=0)

    # The largest request body a service reads (kit/web.py): bigger ones are 413 before any
    # parsing or authentication, also when a service is reached without the gateway.
    max_request_body_bytes: int = Field(default=1024 * 1024, alias="MAX_REQUEST_BODY_BYTES", gt=0)

    @property
    def db_conninfo(self) -> str:
        """libpq connection string built from the DB_* variables."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.db_host,
            port=self.db_port,
            dbname=self.db_name,
            user=self.db_user,
            password=self.db_password,
            application_name=self.service_name,
        )

    @cached_property
    def verifying_keys(self) -> dict[str, Ed25519PublicKey]:
        """The public keys that verify access tokens, by kid (kit/keys.py)."""
        text = read_setting(self.jwt_public_key, self.jwt_public_key_file, "JWT_PUBLIC_KEY")
        keys = verifying_keys(text) if text else {}
        keys |= self._own_verifying_keys()
        if not keys and self.environment == "development":
            keys = verifying_keys(DEVELOPMENT_PUBLIC_KEY)
        return keys

    def _own_verifying_keys(self) -> dict[str, Ed25519PublicKey]:
        """Keys a service knows besides JWT_PUBLIC_KEY: auth's own signing key."""
        return {}

    @model_validator(mode="after")
    def _require_verifying_keys(self) -> Self:
        try:
            keys = self.verifying_keys
        except InvalidKeyError as exc:
            raise ValueError(f"the token keys are not usable: {exc}") from exc
        if self.environment == "development":
            return self
        if not keys:
            raise ValueError(
                "no token verification key: set JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE (auth's "
                f"Ed25519 public key or certificate, PEM) when APP_ENV={self.environment}"
            )
        if keys.keys() & verifying_keys(DEVELOPMENT_PUBLIC_KEY).keys():
            raise ValueError(
                f"JWT_PUBLIC_KEY holds the development key; use a real key pair when "
                f"APP_ENV={self.environment}"
            )
        return self


MAX_BATCH_WAIT_MS = 5_000
"""Kept well under the consumer's session timeout (10 s)."""
GATHERING_BATCH_WAIT_MS = 100
"""The wait of a consumer no order waits on (notifications, analytics): the broker gathers
the events of this long into one batch, one group and one commit (kafka.fetch_config)."""


def consumer_batch_wait(default: int) -> Any:
    """The CONSUMER_BATCH_WAIT_MS setting with `default`, for a service to set its own."""
    return Field(default=default, alias="CONSUMER_BATCH_WAIT_MS", ge=0, le=MAX_BATCH_WAIT_MS)


MAX_BUSY_GATHER_MS = 1_000
BUSY_GATHER_MS = 10
"""The busy gather of a consumer an order waits on (orders, inventory) and of orders' creates:
under load it waits this long for more before it applies a batch (gather.BusyGather). Longer
gathers make bigger groups, so less CPU per order, and a later confirmation: at 400 orders a
second on two cores, 5, 10, 15 and 20 ms cost the six services about 2.65, 2.4, 2.2 and 2.15 ms
of CPU per order, for a p50 of 35, 46, 59 and 73 ms (docs/benchmarks-analysis.md)."""


def consumer_busy_gather(default: int) -> Any:
    """The CONSUMER_BUSY_GATHER_MS setting with `default`, for a service to set its own."""
    return Field(default=default, alias="CONSUMER_BUSY_GATHER_MS", ge=0, le=MAX_BUSY_GATHER_MS)


class EventServiceSettings(ServiceSettings):
    """Settings of a service that consumes and emits Kafka events (kit/backbone.py).

    RUN_RELAY / RUN_CONSUMERS run the outbox relay and the Kafka consumer in this process (both
    on by default; tests and one-role deployments turn them off). KAFKA_CONSUMER_GROUP defaults
    to the service's name. CONSUMER_BATCH_WAIT_MS: how long the broker holds the consumer's
    fetch to gather events into one batch (kafka.fetch_config): 0, the default, for a
    consumer an order waits on; the services no order waits on (notifications, analytics) set
    `GATHERING_BATCH_WAIT_MS` with `consumer_batch_wait`. CONSUMER_BUSY_GATHER_MS: how long a
    consumer that fetches at least `gather.BUSY_FROM_RATE` events a second waits after a
    fetch's first event for more (gather.BusyGather): 0, the default, never waits; the services
    an order waits on (orders, inventory) set `BUSY_GATHER_MS` with `consumer_busy_gather`.
    """

    run_relay: bool = Field(default=True, alias="RUN_RELAY")
    run_consumers: bool = Field(default=True, alias="RUN_CONSUMERS")
    kafka_consumer_group: str | None = Field(
        default=None, alias="KAFKA_CONSUMER_GROUP", min_length=1
    )
    consumer_batch_wait_ms: int = consumer_batch_wait(0)
    consumer_busy_gather_ms: int = consumer_busy_gather(0)

    @property
    def consumer_group(self) -> str:
        return self.kafka_consumer_group or self.service_name
