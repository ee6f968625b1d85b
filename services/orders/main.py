"""The orders service app: HTTP API, outbox relay and the consumer of inventory's answers.

The relay and the consumer are background tasks of the lifespan (RUN_RELAY, RUN_CONSUMERS).
`Workers.start_relay()` and `Workers.start_consumer()` start one each, so tests can kill one
mid-stream (cancel its task) and start it again. Shutdown stops the consumer (committing what
it processed), then the relay, flushes the producer and closes the pool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import socketio
from fastapi import FastAPI

from services.kit.cache import create_redis
from services.kit.db import Pool, apply_migrations, create_pool, ping
from services.kit.kafka import BatchConsumer, EventProducer, dead_letter_topic, ensure_topics
from services.kit.kafka import ping as kafka_ping
from services.kit.live import create_emitter
from services.kit.order_events import ALL_TOPICS
from services.kit.outbox import KIT_MIGRATIONS, OutboxRelay
from services.kit.web import add_readiness_check, create_service_app
from services.orders import repository as repo
from services.orders.catalogue import Catalogue, create_http_client
from services.orders.endpoints import router
from services.orders.handlers import CONSUMED_TOPICS, message_handler
from services.orders.service import LiveUpdates, OrderService
from services.orders.settings import Settings

log = logging.getLogger(__name__)
IDEMPOTENCY_PURGE_INTERVAL_SECONDS = 3600.0
STOP_TIMEOUT_SECONDS = 10.0


@dataclass
class Worker:
    """A background task and the way to ask it to finish."""

    name: str
    task: asyncio.Task[None]
    stop: Callable[[], None]

    async def shutdown(self) -> None:
        """Ask the worker to finish its batch; cancel it if it does not in time."""
        self.stop()
        done, _ = await asyncio.wait({self.task}, timeout=STOP_TIMEOUT_SECONDS)
        if not done:
            log.warning("worker did not stop in time; cancelling", extra={"worker": self.name})
            self.task.cancel()
        await self._reap()

    async def kill(self) -> None:
        """Cancel the worker wherever it is, as a crash would: an unfinished consumer batch is
        not committed (the group redelivers it), an unfinished relay batch is not marked
        published (it is published again)."""
        self.task.cancel()
        await self._reap()

    async def _reap(self) -> None:
        try:
            await self.task
        except asyncio.CancelledError:
            if not self.task.cancelled():
                raise  # the caller is being cancelled, not the worker
        except Exception:
            log.exception("worker failed", extra={"worker": self.name})


class Runner(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


class ConsumerLoop:
    """Keeps a consumer running: one that fails (a commit refused during a rebalance, a dead
    letter the broker would not take) is replaced by a fresh one, which resumes from the last
    committed offsets; the redelivered messages are deduped by event id."""

    def __init__(self, make: Callable[[], Runner], restart_delay: float = 1.0) -> None:
        self.make = make
        self.restart_delay = restart_delay
        self._stopping = False
        self._current: Runner | None = None

    def stop(self) -> None:
        self._stopping = True
        if self._current is not None:
            self._current.stop()

    async def run(self) -> None:
        while not self._stopping:
            self._current = self.make()
            try:
                await self._current.run()
            except Exception:
                log.exception("consumer failed; starting a new one")
                await asyncio.sleep(self.restart_delay)


@dataclass
class Workers:
    """The service's background tasks, started and stopped by the lifespan or by tests."""

    settings: Settings
    pool: Pool
    producer: EventProducer
    service: OrderService
    relay: Worker | None = None
    consumer: Worker | None = None
    _others: list[asyncio.Task[None]] = field(default_factory=list)

    def start_relay(self) -> Worker:
        relay = OutboxRelay(self.pool, self.producer, self.settings.db_conninfo, repo.SCHEMA)
        task = asyncio.create_task(relay.run(), name="orders-outbox-relay")
        self.relay = Worker("relay", task, relay.stop)
        return self.relay

    def start_consumer(self) -> Worker:
        def make() -> BatchConsumer:
            return BatchConsumer(
                self.settings.kafka_broker,
                self.settings.kafka_consumer_group,
                CONSUMED_TOPICS,
                message_handler(self.service),
                service=self.settings.service_name,
                dead_letters=self.producer,
            )

        loop = ConsumerLoop(make)
        task = asyncio.create_task(loop.run(), name="orders-consumer")
        self.consumer = Worker("consumer", task, loop.stop)
        return self.consumer

    def start_maintenance(self) -> None:
        self._others.append(
            asyncio.create_task(self._purge_idempotency_keys(), name="orders-maintenance")
        )

    async def _purge_idempotency_keys(self) -> None:
        while True:
            try:
                async with self.pool.connection() as conn:
                    purged = await repo.purge_idempotency_keys(
                        conn, ttl_hours=self.settings.idempotency_key_ttl_hours
                    )
                if purged:
                    log.info("purged idempotency keys", extra={"count": purged})
            except Exception:  # retried at the next interval
                log.exception("idempotency key purge failed")
            await asyncio.sleep(IDEMPOTENCY_PURGE_INTERVAL_SECONDS)

    async def stop_all(self) -> None:
        for task in self._others:
            task.cancel()
        await asyncio.gather(*self._others, return_exceptions=True)
        if self.consumer is not None:
            await self.consumer.shutdown()
        if self.relay is not None:
            await self.relay.shutdown()


async def _close_emitter(emitter: socketio.AsyncRedisManager) -> None:
    if emitter.redis is not None:
        await emitter.redis.aclose()


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
                topics = [*ALL_TOPICS, *(dead_letter_topic(t) for t in CONSUMED_TOPICS)]
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
            service = OrderService(
                settings,
                pool,
                Catalogue(http, cache_seconds=settings.catalogue_cache_seconds),
                LiveUpdates(emitter, settings.live_push_timeout_seconds),
            )
            workers = Workers(settings, pool, producer, service)
            resources.push_async_callback(workers.stop_all)
            app.state.orders = service
            app.state.workers = workers

            async def postgres_ready() -> None:
                await ping(pool)

            async def redis_ready() -> None:
                await redis.ping()

            async def kafka_ready() -> None:
                await asyncio.to_thread(kafka_ping, settings.kafka_broker)

            add_readiness_check(app, "postgres", postgres_ready)
            add_readiness_check(app, "redis", redis_ready)
            add_readiness_check(app, "kafka", kafka_ready)
            if settings.run_relay:
                workers.start_relay()
            if settings.run_consumers:
                workers.start_consumer()
            workers.start_maintenance()
            yield

    app = create_service_app(settings, "RealTimeOrder orders", lifespan)
    app.include_router(router)
    return app
