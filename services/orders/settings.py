"""Settings of the orders service (environment variables; the seed's names keep working)."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field

from services.kit.settings import EventServiceSettings


class Settings(EventServiceSettings):
    """The orders service's settings.

    - INVENTORY_SERVICE_URL: where the product catalogue is read to price an order.
    - INVENTORY_TIMEOUT_SECONDS: how long a create waits for the catalogue before answering 503.
    - CATALOGUE_CACHE_SECONDS: how long a looked-up product is reused without asking inventory
      again (0, the default, asks every time); see `catalogue.Catalogue`.
    - IDEMPOTENCY_KEY_TTL_HOURS: how long an `Idempotency-Key` replays its first result.
    - RUN_RELAY, RUN_CONSUMERS, KAFKA_CONSUMER_GROUP: see `EventServiceSettings`.
    """

    service_name: str = "orders"
    port: int = Field(default=3002, alias="PORT")

    inventory_service_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:3003"), alias="INVENTORY_SERVICE_URL"
    )
    inventory_timeout_seconds: float = Field(default=3.0, alias="INVENTORY_TIMEOUT_SECONDS", gt=0)
    inventory_max_connections: int = Field(default=100, alias="INVENTORY_MAX_CONNECTIONS", gt=0)
    catalogue_cache_seconds: float = Field(default=0.0, alias="CATALOGUE_CACHE_SECONDS", ge=0)

    idempotency_key_ttl_hours: int = Field(default=24, alias="IDEMPOTENCY_KEY_TTL_HOURS", gt=0)

    @property
    def inventory_base_url(self) -> str:
        return str(self.inventory_service_url).rstrip("/")
