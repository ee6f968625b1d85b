"""Settings of the orders service (environment variables; the seed's names keep working)."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field

from services.kit.settings import (
    BUSY_GATHER_MS,
    MAX_BUSY_GATHER_MS,
    EventServiceSettings,
    consumer_busy_gather,
)
from services.orders.domain import HoldingLimits

DEFAULT_MAX_OPEN_ORDERS = 20
DEFAULT_MAX_OPEN_UNITS = 100


class Settings(EventServiceSettings):
    """The orders service's settings.

    - INVENTORY_SERVICE_URL: where the product catalogue is read to price an order.
    - INVENTORY_TIMEOUT_SECONDS: how long a create waits for the catalogue before answering 503.
    - CATALOGUE_CHECK_SECONDS: how often the copy of the looked-up products confirms inventory's
      catalogue generation; a change reaches pricing at most twice this after inventory marked
      it (see `catalogue.Catalogue`).
    - IDEMPOTENCY_KEY_TTL_HOURS: how long an `Idempotency-Key` replays its first result.
    - MAX_OPEN_ORDERS_PER_USER, MAX_OPEN_UNITS_PER_PRODUCT: how many open orders (CREATED or
      CONFIRMED: waiting for or holding stock) one user may have, and how many units of one
      product they may hold in them, so nobody reserves a product's whole stock. Unset, 20 and
      100 in production; unlimited in development and test (the local stack's benchmark and
      the pipeline tests place thousands or dozens of open orders per customer), where a
      value set is still applied. 0 means unlimited anywhere.
    - MAX_UNSETTLED_ORDERS: while more orders than this wait for inventory's answer (CREATED,
      across replicas), a create is refused with 503 and Retry-After
      (BACKLOG_RETRY_AFTER_SECONDS); counted every BACKLOG_CHECK_SECONDS. 0 turns it off
      (`backlog.Backlog`).
    - CREATES_GATHER_MS: under load (at least `gather.BUSY_FROM_RATE` creates a second) a
      group of creates waits this long for more before its statement runs (`kit/groups.py`);
      0 never waits.
    - RUN_RELAY, RUN_CONSUMERS, KAFKA_CONSUMER_GROUP, CONSUMER_BUSY_GATHER_MS: see
      `EventServiceSettings`.
    """

    service_name: str = "orders"
    port: int = Field(default=3002, alias="PORT")
    consumer_busy_gather_ms: int = consumer_busy_gather(BUSY_GATHER_MS)

    inventory_service_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:3003"), alias="INVENTORY_SERVICE_URL"
    )
    inventory_timeout_seconds: float = Field(default=3.0, alias="INVENTORY_TIMEOUT_SECONDS", gt=0)
    inventory_max_connections: int = Field(default=100, alias="INVENTORY_MAX_CONNECTIONS", gt=0)
    catalogue_check_seconds: float = Field(default=0.5, alias="CATALOGUE_CHECK_SECONDS", gt=0)

    creates_gather_ms: int = Field(
        default=BUSY_GATHER_MS, alias="CREATES_GATHER_MS", ge=0, le=MAX_BUSY_GATHER_MS
    )
    max_unsettled_orders: int = Field(default=100, alias="MAX_UNSETTLED_ORDERS", ge=0)
    backlog_check_seconds: float = Field(default=0.05, alias="BACKLOG_CHECK_SECONDS", gt=0)
    backlog_retry_after_seconds: int = Field(default=2, alias="BACKLOG_RETRY_AFTER_SECONDS", ge=1)

    idempotency_key_ttl_hours: int = Field(default=24, alias="IDEMPOTENCY_KEY_TTL_HOURS", gt=0)
    max_open_orders_per_user: int | None = Field(
        default=None, alias="MAX_OPEN_ORDERS_PER_USER", ge=0
    )
    max_open_units_per_product: int | None = Field(
        default=None, alias="MAX_OPEN_UNITS_PER_PRODUCT", ge=0
    )

    @property
    def holding_limits(self) -> HoldingLimits:
        """The per-user limits in force (see MAX_OPEN_ORDERS_PER_USER)."""
        production = self.environment == "production"

        def resolved(value: int | None, default: int) -> int | None:
            if value is None:
                return default if production else None
            return value or None

        return HoldingLimits(
            open_orders=resolved(self.max_open_orders_per_user, DEFAULT_MAX_OPEN_ORDERS),
            units_per_product=resolved(self.max_open_units_per_product, DEFAULT_MAX_OPEN_UNITS),
        )

    @property
    def inventory_base_url(self) -> str:
        return str(self.inventory_service_url).rstrip("/")
