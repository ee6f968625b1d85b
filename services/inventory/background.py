"""The inventory process's background work: the Kafka consumer, the outbox relay, the sweeper.

Each runs as an asyncio task of the web process and can be started and stopped on its own
(the lifespan starts those the settings enable; tests stop and restart them to simulate
crashes). Stopping a consumer commits what it processed and leaves the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from services.inventory.handlers import TOPICS, EventHandler
from services.inventory.repository import SCHEMA
from services.inventory.service import InventoryService
from services.inventory.settings import Settings
from services.kit.kafka import BatchConsumer, EventProducer
from services.kit.outbox import OutboxRelay

log = logging.getLogger(__name__)
STOP_TIMEOUT_SECONDS = 15.0


class _Task:
    """One named background task and how to ask it to stop."""

    def __init__(self, name: str, run: Coroutine[Any, Any, None], stop: Callable[[], None]) -> None:
        self.stop = stop
        self.task = asyncio.create_task(run, name=name)
        self.task.add_done_callback(_log_failure)

    async def stop_and_wait(self) -> None:
        self.stop()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            log.error("background task did not stop in time", extra={"task": self.task.get_name()})
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        except Exception:  # its failure was logged when it ended; stopping is what matters
            log.debug("stopped a failed background task", extra={"task": self.task.get_name()})


def _running(task: _Task | None) -> bool:
    return task is not None and not task.task.done()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "background task failed", extra={"task": task.get_name()}, exc_info=task.exception()
        )


class BackgroundWork:
    def __init__(
        self, settings: Settings, service: InventoryService, producer: EventProducer
    ) -> None:
        self.settings = settings
        self.service = service
        self.producer = producer
        self._consumer: _Task | None = None
        self._relay: _Task | None = None
        self._sweeper: _Task | None = None

    def start_consumer(self) -> None:
        if _running(self._consumer):
            return
        consumer = BatchConsumer(
            self.settings.kafka_broker,
            self.settings.consumer_group,
            TOPICS,
            EventHandler(self.service),
            service=self.settings.service_name,
            dead_letters=self.producer,
        )
        self._consumer = _Task("inventory-consumer", consumer.run(), consumer.stop)

    async def stop_consumer(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop_and_wait()
            self._consumer = None

    async def kill_consumer(self) -> None:
        """Cancel the consumer mid-batch, as a crash would: nothing more is committed, so the
        group redelivers the uncommitted messages to whoever consumes next."""
        await _kill(self._consumer)
        self._consumer = None

    async def kill_relay(self) -> None:
        """Cancel the relay mid-batch, as a crash would: rows published but not yet marked are
        published again by the next relay (consumers dedupe)."""
        await _kill(self._relay)
        self._relay = None

    def start_relay(self) -> None:
        if _running(self._relay):
            return
        relay = OutboxRelay(self.service.pool, self.producer, self.settings.db_conninfo, SCHEMA)
        self._relay = _Task("inventory-outbox-relay", relay.run(), relay.stop)

    async def stop_relay(self) -> None:
        if self._relay is not None:
            await self._relay.stop_and_wait()
            self._relay = None

    def start_sweeper(self) -> None:
        if _running(self._sweeper):
            return
        stop = asyncio.Event()
        interval = self.settings.reservation_sweep_interval_seconds
        self._sweeper = _Task(
            "inventory-reservation-sweeper",
            _every(interval, stop, self.service.expire_due),
            stop.set,
        )

    async def stop_sweeper(self) -> None:
        if self._sweeper is not None:
            await self._sweeper.stop_and_wait()
            self._sweeper = None

    async def stop_all(self) -> None:
        """Stop consuming first (committing offsets), then the sweeper, then relay the rest."""
        await self.stop_consumer()
        await self.stop_sweeper()
        await self.stop_relay()


async def _every(interval: float, stop: asyncio.Event, work: Callable[[], Awaitable[int]]) -> None:
    while not stop.is_set():
        try:
            done = await work()
            if done:
                log.info("expired reservations released", extra={"count": done})
        except Exception:  # a failed round is retried at the next one
            log.exception("reservation sweep failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def _kill(work: _Task | None) -> None:
    if work is not None:
        work.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work.task
