"""The notifications service app: the in-app center's HTTP API, the consumer of the order
events and the relay of deliveries to RabbitMQ.

The backbone (kit/backbone.py) opens the pool, Redis, the topics and the producer and registers
the outbox purge and the after-commit runner (no Kafka outbox relay: this service emits no
events);
this module adds the delivery relay (kit/rabbit_outbox.py over the `deliveries` table), which
declares the queues of `topology.py` when it starts, the dead-letter archiver
(dead_letters.py), the dead-letter gauge, then the consumer. At shutdown the
consumer stops first, then the after-commit runner finishes its pushes, then the delivery relay
publishes what the consumer wrote last. RUN_RELAY turns the delivery relay off; RUN_CONSUMERS
the consumer and the archiver.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.kit.backbone import Backbone, create_event_service_app
from services.kit.rabbit import Publisher, declare_queues
from services.kit.rabbit_outbox import RabbitRelay
from services.kit.runtime import Periodic
from services.kit.web import add_readiness_check
from services.notifications import repository as repo
from services.notifications import topology
from services.notifications.dead_letters import DeadLetterArchiver
from services.notifications.endpoints import router
from services.notifications.handlers import EVENT_HANDLERS
from services.notifications.known_preferences import PreferencesCache
from services.notifications.service import (
    RELAY_CHANNEL,
    DeliveryOutbox,
    LivePushes,
    NotificationService,
)
from services.notifications.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    async def setup(app: FastAPI, backbone: Backbone) -> NotificationService:
        emitter = backbone.live_emitter()
        service = NotificationService(
            backbone.pool,
            LivePushes(emitter, backbone.pool),
            backbone.after_commit,
            PreferencesCache(settings.preferences_cache_size),
        )
        app.state.notifications = service
        if settings.run_relay:
            publisher = Publisher(settings.rabbitmq_url, app_id=settings.service_name)
            backbone.resources.push_async_callback(publisher.close)
            queues = topology.queues(settings.retry_delays_seconds, settings.max_attempts)
            backbone.runtime.add(
                "delivery-relay",
                lambda: RabbitRelay(
                    service=settings.service_name,
                    publisher=publisher,
                    source=DeliveryOutbox(),
                    conninfo=settings.db_conninfo,
                    schema=repo.SCHEMA,
                    channel=RELAY_CHANNEL,
                    queues=queues,
                    declare=settings.declare_queues,
                    batch_size=settings.relay_batch_size,
                ),
            )

            async def rabbitmq_ready() -> None:
                await declare_queues(settings.rabbitmq_url, queues, passive=True)

            add_readiness_check(app, "rabbitmq", rabbitmq_ready)
        if settings.run_consumers:
            backbone.runtime.add(
                "dead-letter-archiver",
                lambda: DeadLetterArchiver(backbone.pool, settings.rabbitmq_url),
            )
        backbone.runtime.add(
            "dead-letter-gauge",
            lambda: Periodic(
                "dead-letter-gauge", 15.0, service.count_dead_letters, "dead letters counted"
            ),
        )
        return service

    return create_event_service_app(
        settings,
        "RealTimeOrder notifications",
        router,
        schema=repo.SCHEMA,
        migrations=repo.MIGRATIONS,
        handlers=EVENT_HANDLERS,
        setup=setup,
        emits_events=False,
    )
