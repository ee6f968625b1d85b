"""The inventory service's app: `create_app` is the factory `realtimeorder serve inventory` runs.

At start: open the pool, apply the kit's outbox migrations and our own, seed the demo
catalogue, make sure the Kafka topics exist, then start the consumer, the relay and the
sweeper (as the settings say). At shutdown the consumer stops first (committing its offsets),
then the sweeper and the relay, then the producer flushes and the pool closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.inventory.background import BackgroundWork
from services.inventory.cache import ProductListCache
from services.inventory.demo import seed_demo_catalogue
from services.inventory.endpoints import router
from services.inventory.handlers import TOPICS
from services.inventory.repository import MIGRATIONS, SCHEMA
from services.inventory.service import InventoryService
from services.inventory.settings import Settings
from services.kit import kafka
from services.kit.cache import create_redis
from services.kit.db import apply_migrations, create_pool, ping
from services.kit.order_events import ALL_TOPICS
from services.kit.outbox import KIT_MIGRATIONS
from services.kit.web import add_readiness_check, create_service_app

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = create_pool(settings, SCHEMA)
        redis = create_redis(settings)
        await pool.open(wait=True, timeout=30)
        producer: kafka.EventProducer | None = None
        try:
            await apply_migrations(pool, SCHEMA, KIT_MIGRATIONS, prefix="kit:")
            await apply_migrations(pool, SCHEMA, MIGRATIONS)
            cache = ProductListCache(redis, settings.product_cache_ttl_seconds)
            service = InventoryService(pool, cache, settings.reservation_ttl_seconds)
            if settings.seed_demo_catalogue and await seed_demo_catalogue(pool):
                await cache.invalidate()
            topics = (*ALL_TOPICS, *(kafka.dead_letter_topic(topic) for topic in TOPICS))
            await asyncio.to_thread(kafka.ensure_topics, settings.kafka_broker, topics)
            producer = kafka.EventProducer(
                settings.kafka_broker, settings.service_name, service=settings.service_name
            )
            work = BackgroundWork(settings, service, producer)
            app.state.inventory = service
            app.state.background = work

            async def redis_ready() -> None:
                await redis.ping()

            async def kafka_ready() -> None:
                await asyncio.to_thread(kafka.ping, settings.kafka_broker)

            add_readiness_check(app, "postgres", lambda: ping(pool))
            add_readiness_check(app, "redis", redis_ready)
            add_readiness_check(app, "kafka", kafka_ready)
            if settings.run_consumers:
                work.start_consumer()
            if settings.run_relay:
                work.start_relay()
            if settings.run_sweeper:
                work.start_sweeper()
            try:
                yield
            finally:
                await work.stop_all()
        finally:
            if producer is not None:
                await asyncio.to_thread(producer.close)
            await redis.aclose()
            await pool.close()

    app = create_service_app(settings, "RealTimeOrder inventory", lifespan)
    app.include_router(router)
    return app
