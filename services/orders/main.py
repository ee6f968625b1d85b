"""The orders service app: HTTP API, outbox relay and the consumer of inventory's answers.

The relay, the after-commit runner, the consumer and the idempotency-key purge are jobs of the
kit runtime (kit/runtime.py), which restarts a failed one and stops them at shutdown in reverse
order of registration: the consumer first (committing what it processed), then the purge and
the after-commit runner (finishing queued pushes), then the relay. RUN_RELAY and RUN_CONSUMERS
turn the relay and the consumer off. Then the producer flushes and the pool closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import socketio
from fastapi import FastAPI

from services.kit.after_commit import AfterCommit
from services.kit.cache import create_redis
from services.kit.consumer import EventShell, consumer_factory
from services.kit.db import Pool, apply_migrations, create_pool, ping
from services.kit.kafka import EventProducer, dead_letter_topic, ensure_topics
from services.kit.kafka import ping as kafka_ping
from services.kit.live import create_emitter
from services.kit.order_events import ALL_TOPICS
from services.kit.outbox import KIT_MIGRATIONS, OutboxRelay
from services.kit.runtime import Periodic, Runtime
from services.kit.web import add_readiness_check, create_service_app
from services.orders import repository as repo
from services.orders.catalogue import Catalogue, create_http_client
from services.orders.endpoints import router
from services.orders.handlers import EVENT_HANDLERS
from services.orders.service import LiveUpdates, OrderService
from services.orders.settings import Settings

log = logging.getLogger(__name__)
IDEMPOTENCY_PURGE_INTERVAL_SECONDS = 3600.0


async def _close_emitter(emitter: socketio.AsyncRedisManager) -> None:
    if emitter.redis is not None:
        await emitter.redis.aclose()


def _purge_idempotency_keys(pool: Pool, ttl_hours: int) -> Periodic:
    async def purge() -> None:
        async with pool.connection() as conn:
            purged = await repo.purge_idempotency_keys(conn, ttl_hours=ttl_hours)
        if purged:
            log.info("purged idempotency keys", extra={"count": purged})

    return Periodic("idempotency-key-purge", IDEMPOTENCY_PURGE_INTERVAL_SECONDS, purge)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Each resource is closed in reverse order of opening, also when start-up fails.
        async with AsyncExitStack() as resources:
            pool = create_pool(settings, repo.SCHEMA)
            await pool.open(wait=True, timeout=30)
            resources.push_async_callback(pool.close)
            await apply_migrations(pool, repo.SCHEMA, KIT_MIGRATIONS, prefix="kit:")
            await apply_migrations(pool, repo.SCHEMA, repo.MIGRATIONS)
            if settings.run_relay or settings.run_consumers:
                topics = [*ALL_TOPICS, *(dead_letter_topic(t) for t in EVENT_HANDLERS)]
                await asyncio.to_thread(
                    ensure_topics, settings.kafka_broker, topics, settings.kafka_topic_partitions
                )
            redis = create_redis(settings)
            resources.push_async_callback(redis.aclose)
            emitter = create_emitter(settings.redis_url)
            resources.push_async_callback(_close_emitter, emitter)
            http = await resources.enter_async_context(create_http_client(settings))
            producer = EventProducer(
                settings.kafka_broker, settings.service_name, service=settings.service_name
            )
            resources.push_async_callback(asyncio.to_thread, producer.close)
            after_commit = AfterCommit(
                settings.service_name,
                capacity=settings.after_commit_capacity,
                timeout=settings.after_commit_timeout_seconds,
            )
            service = OrderService(
                settings,
                pool,
                Catalogue(http, cache_seconds=settings.catalogue_cache_seconds),
                LiveUpdates(emitter),
                after_commit,
            )
            app.state.orders = service

            runtime = Runtime(settings.service_name)
            if settings.run_relay:
                runtime.add(
                    "outbox-relay",
                    lambda: OutboxRelay(pool, producer, settings.db_conninfo, repo.SCHEMA),
                )
            runtime.add("after-commit", after_commit.job)
            runtime.add(
                "idempotency-key-purge",
                lambda: _purge_idempotency_keys(pool, settings.idempotency_key_ttl_hours),
            )
            shell = EventShell(settings.service_name, service, pool, EVENT_HANDLERS, after_commit)
            app.state.event_shell = shell
            if settings.run_consumers:
                runtime.add(
                    "consumer",
                    consumer_factory(
                        bootstrap=settings.kafka_broker,
                        group_id=settings.kafka_consumer_group,
                        shell=shell,
                        dead_letters=producer,
                    ),
                )
            runtime.attach(app)

            async def postgres_ready() -> None:
                await ping(pool)

            async def redis_ready() -> None:
                await redis.ping()

            async def kafka_ready() -> None:
                await asyncio.to_thread(kafka_ping, settings.kafka_broker)

            add_readiness_check(app, "postgres", postgres_ready)
            add_readiness_check(app, "redis", redis_ready)
            add_readiness_check(app, "kafka", kafka_ready)
            runtime.start()
            resources.push_async_callback(runtime.stop)
            yield

    app = create_service_app(settings, "RealTimeOrder orders", lifespan)
    app.include_router(router)
    return app
