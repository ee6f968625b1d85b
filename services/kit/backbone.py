"""What every event-driven service opens at start, in one place: the backbone.

`open_backbone` opens, in order, and registers for closing in reverse order on the caller's
exit stack: the PostgreSQL pool (with the kit's outbox tables and the service's migrations
applied into its schema), Redis, the Kafka topics it needs (created in the local stack), the
idempotent producer, the after-commit runner and the service's `Runtime` with the outbox relay
(for a service that emits events), the outbox purge and the after-commit runner registered. It
adds the readiness checks for PostgreSQL, Redis and Kafka. The service then builds its service
object, registers its own periodic jobs, its consumer (`consume`), and calls `start`, which
attaches the runtime to the app's probes and starts every job; the jobs stop before anything
the backbone opened is closed. `event_service_lifespan` is that whole sequence, and
`create_event_service_app` the app around it that a service's `main.py` returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI
from redis.asyncio import Redis

from services.kit import kafka
from services.kit.after_commit import AfterCommit
from services.kit.cache import create_redis
from services.kit.consumer import EventShell, Handler, consumer_factory
from services.kit.db import Pool, apply_migrations, create_pool, ping
from services.kit.live import PipelinedEmitter, create_emitter
from services.kit.order_events import ALL_TOPICS
from services.kit.outbox import KIT_MIGRATIONS, PURGE_EVERY_SECONDS, OutboxRelay, purge_outbox
from services.kit.runtime import Periodic, Runtime
from services.kit.settings import EventServiceSettings, ServiceSettings
from services.kit.web import Lifespan, add_readiness_check, create_service_app

S = TypeVar("S")


@dataclass
class Backbone:
    """The opened resources of an event-driven service and its runtime."""

    settings: ServiceSettings
    resources: AsyncExitStack
    pool: Pool
    redis: Redis
    producer: kafka.EventProducer
    after_commit: AfterCommit
    runtime: Runtime

    def shell(self, service: S, handlers: Mapping[str, Handler[S]]) -> EventShell[S]:
        """The consumer shell applying `handlers` (the service's EVENT_HANDLERS) to `service`."""
        return EventShell(
            self.settings.service_name, service, self.pool, handlers, self.after_commit
        )

    def consume(self, shell: EventShell[Any], settings: EventServiceSettings) -> None:
        """Register the Kafka consumer (register it last: it stops first) as `settings` say:
        its group, how long the broker holds a fetch (kafka.fetch_config) and how long a busy
        consumer waits for more (gather.BusyGather)."""
        self.runtime.add(
            "consumer",
            consumer_factory(
                bootstrap=self.settings.kafka_broker,
                group_id=settings.consumer_group,
                shell=shell,
                dead_letters=self.producer,
                batch_wait_ms=settings.consumer_batch_wait_ms,
                busy_gather_ms=settings.consumer_busy_gather_ms,
            ),
        )

    def live_emitter(self) -> PipelinedEmitter:
        """A Socket.IO emitter through Redis (kit/live.py), closed with the backbone once what
        it was given is published."""
        emitter = create_emitter(
            self.settings.redis_url, timeout=self.settings.after_commit_timeout_seconds
        )
        self.resources.push_async_callback(emitter.close)
        return emitter

    def start(self, app: FastAPI) -> None:
        """Report the jobs in the app's probes and start them; they stop on the stack's exit."""
        self.runtime.attach(app)
        self.runtime.start()
        self.resources.push_async_callback(self.runtime.stop)


async def open_backbone(
    app: FastAPI,
    resources: AsyncExitStack,
    settings: ServiceSettings,
    *,
    schema: str,
    migrations: Path,
    consumed_topics: Iterable[str],
    run_relay: bool,
    create_topics: bool = True,
) -> Backbone:
    pool = create_pool(settings, schema)
    await pool.open(wait=True, timeout=30)
    resources.push_async_callback(pool.close)
    await apply_migrations(pool, schema, KIT_MIGRATIONS, prefix="kit:")
    await apply_migrations(pool, schema, migrations)
    redis = create_redis(settings)
    resources.push_async_callback(redis.aclose)
    if create_topics:
        topics = [*ALL_TOPICS, *(kafka.dead_letter_topic(t) for t in consumed_topics)]
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
    runtime = Runtime(settings.service_name)
    if run_relay:
        runtime.add(
            "outbox-relay", lambda: OutboxRelay(pool, producer, settings.db_conninfo, schema)
        )
    runtime.add(
        "outbox-purge",
        lambda: Periodic(
            "outbox-purge", PURGE_EVERY_SECONDS, partial(purge_outbox, pool), "outbox purged"
        ),
    )
    runtime.add("after-commit", after_commit.job)

    async def postgres_ready() -> None:
        await ping(pool)

    async def redis_ready() -> None:
        await redis.ping()

    async def kafka_ready() -> None:
        await asyncio.to_thread(kafka.ping, settings.kafka_broker)

    add_readiness_check(app, "postgres", postgres_ready)
    add_readiness_check(app, "redis", redis_ready)
    add_readiness_check(app, "kafka", kafka_ready)
    return Backbone(settings, resources, pool, redis, producer, after_commit, runtime)


def event_service_lifespan(
    settings: EventServiceSettings,
    *,
    schema: str,
    migrations: Path,
    handlers: Mapping[str, Handler[S]],
    setup: Callable[[FastAPI, Backbone], Awaitable[S]],
    emits_events: bool = True,
) -> Lifespan:
    """The lifespan of an event-driven service: open the backbone, let `setup` build the
    service object (and register its own jobs), then register the consumer of `handlers` last
    and start every job. Everything closes in reverse order, also when start-up fails."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as resources:
            backbone = await open_backbone(
                app,
                resources,
                settings,
                schema=schema,
                migrations=migrations,
                consumed_topics=handlers,
                run_relay=settings.run_relay and emits_events,
                create_topics=(settings.run_relay or settings.run_consumers)
                and kafka.creates_topics(),
            )
            service = await setup(app, backbone)
            app.state.event_shell = backbone.shell(service, handlers)
            if settings.run_consumers:
                backbone.consume(app.state.event_shell, settings)
            backbone.start(app)
            yield

    return lifespan


def create_event_service_app(
    settings: EventServiceSettings,
    title: str,
    router: APIRouter,
    *,
    schema: str,
    migrations: Path,
    handlers: Mapping[str, Handler[S]],
    setup: Callable[[FastAPI, Backbone], Awaitable[S]],
    emits_events: bool = True,
) -> FastAPI:
    """An event-driven service's app: the platform's app (kit/web.py) with `router` and the
    lifespan of `event_service_lifespan`."""
    lifespan = event_service_lifespan(
        settings,
        schema=schema,
        migrations=migrations,
        handlers=handlers,
        setup=setup,
        emits_events=emits_events,
    )
    app = create_service_app(settings, title, lifespan)
    app.include_router(router)
    return app
