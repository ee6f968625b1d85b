"""The analytics service app: the admin reports, the event log and the broker monitor, over a
projection of the order events.

The backbone (kit/backbone.py) opens the pool (applying migrations/), Redis and the topics and
registers the outbox purge; this module opens the Prometheus client and builds the service,
then the backbone registers the consumer of `EVENT_HANDLERS` (the projection). This service
emits no events, so it runs no outbox relay. RUN_CONSUMERS=false serves the reports without
consuming (a replica that only answers).
"""

from __future__ import annotations

from fastapi import FastAPI

from services.analytics import repository as repo
from services.analytics.endpoints import router
from services.analytics.handlers import EVENT_HANDLERS
from services.analytics.prometheus import Prometheus
from services.analytics.service import AnalyticsService
from services.analytics.settings import Settings
from services.kit.backbone import Backbone, create_event_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    async def setup(app: FastAPI, backbone: Backbone) -> AnalyticsService:
        prometheus = Prometheus(settings.prometheus_url, settings.prometheus_timeout_seconds)
        backbone.resources.push_async_callback(prometheus.close)
        service = AnalyticsService(backbone.pool, prometheus, settings)
        app.state.analytics = service
        return service

    return create_event_service_app(
        settings,
        "RealTimeOrder analytics",
        router,
        schema=repo.SCHEMA,
        migrations=repo.MIGRATIONS,
        handlers=EVENT_HANDLERS,
        setup=setup,
        emits_events=False,
    )
