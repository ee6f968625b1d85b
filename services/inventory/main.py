"""The inventory service's app: `create_app` is the factory `realtimeorder serve inventory` runs.

At start: open the pool, apply the kit's outbox migrations and our own, seed the demo
catalogue, make sure the Kafka topics exist, then start the runtime's jobs (kit/runtime.py):
the outbox relay, the after-commit runner, the reservation sweeper and the consumer, as the
settings say. At shutdown they stop in reverse order: the consumer first (committing its
offsets), then the sweeper and the after-commit runner, then the relay; then the producer
flushes and the pool closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from services.inventory.cache import ProductListCache
from services.inventory.demo import seed_demo_catalogue
from services.inventory.endpoints import router
from services.inventory.handlers import EVENT_HANDLERS
from services.inventory.repository import MIGRATIONS, SCHEMA
from services.inventory.service import InventoryService
from services.inventory.settings import Settings
from services.kit import kafka
from services.kit.after_commit import AfterCommit
from services.kit.cache import create_redis
from services.kit.consumer import EventShell, consumer_factory
from services.kit.db import apply_migrations, create_pool, ping
from services.kit.order_events import ALL_TOPICS
from services.kit.outbox import KIT_MIGRATIONS, OutboxRelay
from services.kit.runtime import Periodic, Runtime
from services.kit.web import add_readiness_check, create_service_app

log = logging.getLogger(__name__)


def _sweeper(service: InventoryService, interval: float) -> Periodic:
    async def sweep() -> None:
        released = await service.expire_due()
        if released:
            log.info("expired reservations released", extra={"count": released})

    return Periodic("reservation-sweeper", interval, sweep)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Each resource is closed in reverse order of opening, also when start-up fails.
        async with AsyncExitStack() as resources:
            pool = create_pool(settings, SCHEMA)
            await pool.open(wait=True, timeout=30)
            resources.push_async_callback(pool.close)
            redis = create_redis(settings)
            resources.push_async_callback(redis.aclose)
            await apply_migrations(pool, SCHEMA, KIT_MIGRATIONS, prefix="kit:")
            await apply_migrations(pool, SCHEMA, MIGRATIONS)
            cache = ProductListCache(redis, settings.product_cache_ttl_seconds)
            service = InventoryService(pool, cache, settings.reservation_ttl_seconds)
            if settings.seed_demo_catalogue and await seed_demo_catalogue(pool):
                await cache.invalidate()
            topics = (*ALL_TOPICS, *(kafka.dead_letter_topic(t) for t in EVENT_HANDLERS))
            await asyncio.to_thread(
                kafka.ensure_topics, settings.kafka_broker, topics, settings.kafka_topic_partitions
            )
            producer = kafka.EventProducer(
                settings.kafka_broker, settings.service_name, service=settings.service_name
            )
            resources.push_async_callback(asyncio.to_thread, producer.close)
            after_commit = AfterCommit(
                settings.service_name,
                capacity=settings.after_commit_capacity,
                timeout=settings.after_commit_timeout_seconds,
            )
            app.state.inventory = service

            runtime = Runtime(settings.service_name)
            if settings.run_relay:
                runtime.add(
                    "outbox-relay",
                    lambda: OutboxRelay(pool, producer, settings.db_conninfo, SCHEMA),
                )
            runtime.add("after-commit", after_commit.job)
            if settings.run_sweeper:
                runtime.add(
                    "reservation-sweeper",
                    lambda: _sweeper(service, settings.reservation_sweep_interval_seconds),
                )
            shell = EventShell(settings.service_name, service, pool, EVENT_HANDLERS, after_commit)
            app.state.event_shell = shell
            if settings.run_consumers:
                runtime.add(
                    "consumer",
                    consumer_factory(
                        bootstrap=settings.kafka_broker,
                        group_id=settings.consumer_group,
                        shell=shell,
                        dead_letters=producer,
                    ),
                )
            runtime.attach(app)

            async def redis_ready() -> None:
                await redis.ping()

            async def kafka_ready() -> None:
                await asyncio.to_thread(kafka.ping, settings.kafka_broker)

            add_readiness_check(app, "postgres", lambda: ping(pool))
            add_readiness_check(app, "redis", redis_ready)
            add_readiness_check(app, "kafka", kafka_ready)
            runtime.start()
            resources.push_async_callback(runtime.stop)
            yield

    app = create_service_app(settings, "RealTimeOrder inventory", lifespan)
    app.include_router(router)
    return app
