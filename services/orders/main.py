"""The orders service app: HTTP API, outbox relay and the consumer of inventory's answers.

The backbone (kit/backbone.py) opens the pool, Redis, the topics and the producer and registers
the outbox relay and the after-commit runner with the kit runtime; this module adds the
catalogue's change watch, the count of unsettled orders (backlog.py), the idempotency-key purge
and the consumer. At shutdown the jobs stop in reverse order of registration: the consumer
first (committing what it processed), then the purge and the other periodic jobs and the
after-commit runner (finishing queued pushes), then the relay; then the producer flushes and
the pool closes. RUN_RELAY and RUN_CONSUMERS turn the relay and the consumer off.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from services.kit.backbone import Backbone, create_event_service_app
from services.kit.changes import CATALOGUE_CHANGES, ChangeWatch
from services.kit.runtime import Periodic
from services.orders import repository as repo
from services.orders.backlog import NOT_COUNTED, Backlog
from services.orders.catalogue import Catalogue, create_http_client
from services.orders.create_route import install_create_route
from services.orders.endpoints import router
from services.orders.handlers import EVENT_HANDLERS
from services.orders.service import LiveUpdates, OrderService
from services.orders.settings import Settings

log = logging.getLogger(__name__)
IDEMPOTENCY_PURGE_INTERVAL_SECONDS = 3600.0


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    async def setup(app: FastAPI, backbone: Backbone) -> OrderService:
        emitter = backbone.live_emitter()
        http = await backbone.resources.enter_async_context(create_http_client(settings))
        catalogue = Catalogue(http, check_seconds=settings.catalogue_check_seconds)
        backlog = Backlog(
            backbone.pool,
            settings.max_unsettled_orders,
            settings.backlog_check_seconds,
            settings.backlog_retry_after_seconds,
        )
        service = OrderService(
            settings,
            backbone.pool,
            catalogue,
            LiveUpdates(emitter),
            backbone.after_commit,
            backlog,
        )
        app.state.orders = service
        backbone.runtime.add(
            "catalogue-changes",
            lambda: ChangeWatch(backbone.redis, CATALOGUE_CHANGES, catalogue),
        )
        if settings.max_unsettled_orders:
            backbone.runtime.add(
                "unsettled-orders",
                lambda: Periodic(
                    "unsettled-orders",
                    backlog.check_seconds,
                    backlog.count,
                    failing=NOT_COUNTED,
                ),
            )
        backbone.runtime.add(
            "idempotency-key-purge",
            lambda: Periodic(
                "idempotency-key-purge",
                IDEMPOTENCY_PURGE_INTERVAL_SECONDS,
                service.purge_idempotency_keys,
                report="purged idempotency keys",
            ),
        )
        return service

    app = create_event_service_app(
        settings,
        "RealTimeOrder orders",
        router,
        schema=repo.SCHEMA,
        migrations=repo.MIGRATIONS,
        handlers=EVENT_HANDLERS,
        setup=setup,
    )
    install_create_route(app, router)
    return app
