"""Administrative commands of the analytics service, run by the `realtimeorder` CLI.

`realtimeorder analytics-replay` rebuilds the projection from the topics: it empties the
projection (unless `--keep`) and applies every event the topics hold from the start through the
same consumer shell and handlers as the running service. The running service may keep
consuming meanwhile: each event is applied once, whichever of the two gets to it first, so
nothing is counted twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from services.analytics import repository as repo
from services.analytics.handlers import EVENT_HANDLERS
from services.analytics.history import read_history
from services.analytics.prometheus import Prometheus
from services.analytics.service import AnalyticsService
from services.analytics.settings import Settings
from services.kit.after_commit import AfterCommit
from services.kit.consumer import EventShell
from services.kit.db import apply_migrations, create_pool
from services.kit.outbox import KIT_MIGRATIONS

log = logging.getLogger(__name__)


@dataclass
class ReplayReport:
    applied: int = 0
    already_applied: int = 0
    unreadable: int = 0
    """Messages that cannot be parsed (the running consumer dead-lettered them too)."""


async def replay(settings: Settings, *, keep: bool = False) -> ReplayReport:
    pool = create_pool(settings, repo.SCHEMA)
    await pool.open(wait=True, timeout=30)
    prometheus = Prometheus(settings.prometheus_url, settings.prometheus_timeout_seconds)
    report = ReplayReport()
    try:
        await apply_migrations(pool, repo.SCHEMA, KIT_MIGRATIONS, prefix="kit:")
        await apply_migrations(pool, repo.SCHEMA, repo.MIGRATIONS)
        service = AnalyticsService(pool, prometheus, settings)
        if not keep:
            await service.clear()
        after_commit = AfterCommit(settings.service_name, capacity=1, timeout=1.0)
        shell = EventShell(settings.service_name, service, pool, EVENT_HANDLERS, after_commit)
        batches = read_history(settings.kafka_broker, EVENT_HANDLERS)
        while (batch := await asyncio.to_thread(next, batches, None)) is not None:
            for record in batch:
                try:
                    applied = await shell.handle(record.topic, record.value)
                except ValueError as exc:  # pydantic's ValidationError is one
                    report.unreadable += 1
                    log.warning(
                        "unreadable event skipped",
                        extra={"topic": record.topic, "offset": record.offset, "error": str(exc)},
                    )
                    continue
                if applied is None:
                    report.already_applied += 1
                else:
                    report.applied += 1
    finally:
        await prometheus.close()
        await pool.close()
    return report
