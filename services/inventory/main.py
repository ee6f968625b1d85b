"""The inventory service's app: `create_app` is the factory `realtimeorder serve inventory` runs.

The backbone (kit/backbone.py) opens the pool (with the kit's outbox migrations and ours), Redis,
the topics and the producer, and registers the outbox relay and the after-commit runner with
the kit runtime. This module seeds the demo catalogue and adds the reservation sweeper and the
consumer, as the settings say. At shutdown the jobs stop in reverse order: the consumer first
(committing its offsets), then the sweeper and the after-commit runner, then the relay; then a
stock change still waiting to mark the product list stale marks it, the producer flushes and
the pool closes.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from services.inventory.cache import ProductListCache
from services.inventory.demo import seed_demo_catalogue
from services.inventory.endpoints import router
from services.inventory.handlers import EVENT_HANDLERS
from services.inventory.repository import MIGRATIONS, SCHEMA
from services.inventory.service import InventoryService
from services.inventory.settings import Settings
from services.kit.backbone import Backbone, create_event_service_app
from services.kit.runtime import Periodic

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    async def setup(app: FastAPI, backbone: Backbone) -> InventoryService:
        cache = ProductListCache(
            backbone.redis,
            settings.product_cache_ttl_seconds,
            settings.product_cache_max_pages,
            stock_mark_seconds=settings.product_stock_mark_seconds,
        )
        # Closed after the jobs stop (they may still mark) and before Redis closes.
        backbone.resources.push_async_callback(cache.close)
        service = InventoryService(backbone.pool, cache, settings.reservation_ttl_seconds)
        if settings.seed_demo_catalogue and await seed_demo_catalogue(backbone.pool):
            await cache.invalidate(catalogue=True)
        app.state.inventory = service
        if settings.run_sweeper:
            backbone.runtime.add(
                "reservation-sweeper",
                lambda: Periodic(
                    "reservation-sweeper",
                    settings.reservation_sweep_interval_seconds,
                    service.expire_due,
                    report="expired reservations released",
                ),
            )
        return service

    return create_event_service_app(
        settings,
        "RealTimeOrder inventory",
        router,
        schema=SCHEMA,
        migrations=MIGRATIONS,
        handlers=EVENT_HANDLERS,
        setup=setup,
    )
