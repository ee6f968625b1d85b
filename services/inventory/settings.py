"""Settings of the inventory service (environment variables; the seed's names keep working)."""

from __future__ import annotations

from pydantic import Field

from services.kit.settings import BUSY_GATHER_MS, EventServiceSettings, consumer_busy_gather


class Settings(EventServiceSettings):
    """The inventory service's settings.

    The Kafka consumer, the outbox relay and the reservation sweeper run as background tasks of
    the web process; each can be turned off (RUN_CONSUMERS, RUN_RELAY, RUN_SWEEPER), e.g. to
    run them in a separate deployment or to drive them by hand in tests.
    """

    service_name: str = "inventory"
    port: int = Field(default=3003, alias="PORT")
    consumer_busy_gather_ms: int = consumer_busy_gather(BUSY_GATHER_MS)

    seed_demo_catalogue: bool = Field(default=True, alias="SEED_DEMO_CATALOGUE")
    reservation_ttl_seconds: int = Field(default=900, alias="RESERVATION_TTL_SECONDS", gt=0)
    reservation_sweep_interval_seconds: float = Field(
        default=5.0, alias="RESERVATION_SWEEP_INTERVAL_SECONDS", gt=0
    )
    product_cache_ttl_seconds: int = Field(default=60, alias="PRODUCT_CACHE_TTL_SECONDS", gt=0)
    # How many product pages may be cached per TTL window (services/inventory/cache.py).
    product_cache_max_pages: int = Field(default=2000, alias="PRODUCT_CACHE_MAX_PAGES", gt=0)
    # How long availability in the list may trail the order flow (services/inventory/cache.py).
    product_stock_mark_seconds: float = Field(
        default=0.25, alias="PRODUCT_STOCK_MARK_SECONDS", ge=0, le=5
    )

    run_sweeper: bool = Field(default=True, alias="RUN_SWEEPER")
