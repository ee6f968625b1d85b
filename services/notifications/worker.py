"""A channel worker: takes one channel's messages off RabbitMQ and sends them, once.

`realtimeorder worker email|sms|push` runs one (the app below, on PORT, serves /healthz,
/readyz and /metrics; the work itself is a job of the kit runtime). Per batch of messages:

1. **claim** the batch's deliveries in one statement (attempts.py): a delivery already sent is
   a duplicate and is not sent again; one another worker holds right now is parked for later;
2. **send** the claimed ones, rendered from their templates (rendering.py), to the provider
   (providers.py), at most WORKER_CONCURRENCY at once;
3. **record** every attempt, the deliveries' new statuses and the dead letters, in one
   statement;
4. **publish** (with confirms) each transient failure to its retry queue with `attempt + 1`
   (the queue's TTL returns it to the work queue later: nobody sleeps), and each dead letter
   to `notifications.dlq` with its reason and attempt count;
5. **ack** the batch.

Failures: a transient failure (timeout, refused connection, SMTP 4xx, HTTP 5xx/408/425/429) is
retried until MAX_ATTEMPTS; a permanent one (invalid address, SMTP 5xx, other HTTP 4xx, a
template that cannot render, a malformed message, an unknown delivery) is dead-lettered at once.

Exactly once, and its limit: a message redelivered after a crash finds its delivery `sent`, or
claimed by the crashed worker (it waits until the claim is older than the provider timeout),
and is not sent again. A worker that dies after the provider accepted a message and before
step 3 committed sends it again on redelivery: that window (one send plus one commit) is
covered only by the provider's dedupe on the idempotency key (HTTP) or the stable Message-ID
(SMTP).

Tracing (services/kit/tracing.py): each message is worked on in a CONSUMER span, a child of
the trace context in its headers (the delivery relay's span, in the order's trace), with its
outcome; a message parked for a retry carries that span's context, so every attempt of a
delivery sits in the same trace.

Consuming is the kit's `QueueConsumer` (kit/rabbit_consumer.py): connection loss ends the job,
the runtime restarts it with backoff, and the broker redelivers whatever was not acked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aio_pika.abc import AbstractChannel
from fastapi import FastAPI
from opentelemetry.trace import Span
from pydantic import ValidationError

from services.kit import tracing
from services.kit.db import Pool, autocommit, create_pool
from services.kit.ids import new_id
from services.kit.metrics import labelled
from services.kit.rabbit import Outgoing, Queue, declare_queues, publish_confirmed
from services.kit.rabbit_consumer import Delivery, QueueConsumer, settle
from services.kit.runtime import Runtime
from services.kit.web import add_readiness_check, create_service_app
from services.notifications import attempts as store
from services.notifications import metrics
from services.notifications import repository as repo
from services.notifications.domain import Channel
from services.notifications.messages import NotificationMessage, parse_message
from services.notifications.providers import (
    HttpSender,
    PermanentFailure,
    Sender,
    SmtpSender,
    TransientFailure,
    push_body,
    sms_body,
)
from services.notifications.rendering import Renderer, RenderFailed
from services.notifications.settings import WorkerSettings
from services.notifications.topology import (
    DEAD_LETTER_QUEUE,
    WORK_QUEUES,
    retry_delay,
    retry_queue,
)

log = logging.getLogger(__name__)
PROCESSORS = 4
"""Batches a worker works on at once."""


@dataclass(slots=True)
class _Item:
    incoming: Delivery
    message: NotificationMessage | None = None
    known: bool = True
    """Whether its delivery exists (false: dead-lettered, with no delivery to move on)."""
    outcome: str = ""
    """sent, retried, dead_lettered, duplicate, held or gone (metrics.WORKER_OUTCOMES)."""
    detail: str | None = None
    """The provider's answer, or why it failed."""
    duration_ms: float | None = None
    republish: Outgoing | None = field(default=None)
    span: Span | None = None


def _parse(incoming: Delivery) -> _Item:
    item = _Item(incoming)
    try:
        item.message = parse_message(incoming.body)
    except (ValidationError, ValueError) as exc:
        item.outcome, item.detail = "dead_lettered", f"malformed message: {_first_error(exc)}"
    return item


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        return f"{where}: {error['msg']}" if where else str(error["msg"])
    return str(exc)[:200]


class ChannelWorker(QueueConsumer):
    """The runtime job of one channel (see the module docstring)."""

    def __init__(
        self,
        channel: Channel,
        settings: WorkerSettings,
        pool: Pool,
        sender: Sender,
        renderer: Renderer,
    ) -> None:
        super().__init__(
            settings.rabbitmq_url,
            WORK_QUEUES[channel],
            name=settings.service_name,
            prefetch=settings.prefetch,
            batch_size=settings.batch_size,
            processors=PROCESSORS,
            linger=settings.batch_linger_ms / 1000,
        )
        self.channel = channel
        self.settings = settings
        self.pool = pool
        self.sender = sender
        self.renderer = renderer
        self._sending = asyncio.Semaphore(settings.concurrency)

    async def handle(self, batch: list[Delivery], amqp: AbstractChannel) -> None:
        """Claim, send, record, publish and ack one batch (the module docstring's steps)."""
        clock = _StageClock(str(self.channel))
        items = [_parse(incoming) for incoming in batch]
        for item in items:
            item.span = self.message_span(item.incoming)
        try:
            await self._work(items, amqp, clock)
        except BaseException as exc:
            for item in items:
                tracing.end_span(item.span, exc)
            raise
        for item in items:
            if item.span is not None:
                item.span.set_attribute("realtimeorder.outcome", item.outcome)
                if item.detail:
                    item.span.set_attribute("realtimeorder.detail", item.detail[:200])
            tracing.end_span(item.span)

    async def _work(self, items: list[_Item], amqp: AbstractChannel, clock: _StageClock) -> None:
        valid = [item for item in items if item.message is not None]
        # The claim and the record are a statement each, in autocommit: each waits for the
        # database once.
        async with autocommit(self.pool) as conn:
            claim = await store.claim(
                conn,
                [item.message.delivery_id for item in valid if item.message],
                self.settings.claim_timeout_seconds,
            )
        clock.lap("claim")
        await asyncio.gather(*(self._settle(item, claim) for item in valid))
        clock.lap("send")
        attempts, dead_letters = self._records(items)
        async with autocommit(self.pool) as conn:
            await store.record(conn, attempts, dead_letters)
        clock.lap("record")
        republished = [item for item in items if item.republish is not None]
        results = await publish_confirmed(
            amqp,
            [item.republish for item in republished if item.republish],
            app_id=self.settings.service_name,
        )
        failed = {id(item) for item, error in zip(republished, results, strict=True) if error}
        clock.lap("publish")
        await settle(
            [item.incoming for item in items if id(item) not in failed],
            [item.incoming for item in items if id(item) in failed],
        )
        for item in items:
            labelled(metrics.WORKER_DELIVERIES, str(self.channel), item.outcome).inc()
        clock.lap("ack")
        if failed:
            log.warning(
                "republishing failed; messages returned to the queue", extra={"count": len(failed)}
            )

    async def _settle(self, item: _Item, claim: store.Claim) -> None:
        """Decide one valid message's fate: send it, or say why not (in the message's span)."""
        with tracing.use(item.span):
            await self._settle_traced(item, claim)

    async def _settle_traced(self, item: _Item, claim: store.Claim) -> None:
        message = item.message
        assert message is not None
        if message.delivery_id not in claim.claimed:
            status = claim.statuses.get(message.delivery_id)
            if status is None:
                item.known, item.outcome, item.detail = False, "dead_lettered", "unknown delivery"
            elif status == "sent":
                item.outcome, item.detail = "duplicate", "already sent"
            elif status == "sending":
                item.outcome, item.detail = "held", "another worker holds it"
            else:
                item.outcome, item.detail = "gone", f"delivery is {status}"
            return
        started = time.perf_counter()
        result = "ok"
        try:
            content = self.renderer.render(str(message.event_type), message.to_document())
            async with self._sending:
                item.detail = await self.sender.send(message, content)
            item.outcome = "sent"
            labelled(metrics.EVENT_TO_DELIVERY, str(self.channel)).observe(
                max((datetime.now(UTC) - message.data.occurred_at).total_seconds(), 0.0)
            )
        except TransientFailure as exc:
            result, item.detail = "transient", str(exc)
            item.outcome = (
                "retried" if message.attempt < self.settings.max_attempts else "dead_lettered"
            )
            if item.outcome == "dead_lettered":
                item.detail = f"{exc} (gave up after {message.attempt} attempts)"
        except (PermanentFailure, RenderFailed) as exc:
            result, item.outcome, item.detail = "permanent", "dead_lettered", str(exc)
        item.duration_ms = (time.perf_counter() - started) * 1000
        labelled(metrics.PROVIDER_SECONDS, str(self.channel), result).observe(
            item.duration_ms / 1000
        )

    def _records(self, items: list[_Item]) -> tuple[list[store.Attempt], list[store.DeadLetter]]:
        """The attempts and dead letters of a batch; sets what each item republishes."""
        attempts: list[store.Attempt] = []
        dead_letters: list[store.DeadLetter] = []
        for item in items:
            message = item.message
            if message is not None and item.known and item.outcome in _ATTEMPT_OUTCOME:
                attempts.append(
                    store.Attempt(
                        delivery_id=message.delivery_id,
                        notification_id=message.notification_id,
                        channel=str(self.channel),
                        attempt=message.attempt,
                        outcome=_ATTEMPT_OUTCOME[item.outcome],
                        provider_response=item.detail,
                        duration_ms=item.duration_ms,
                    )
                )
            if item.outcome == "retried" and message is not None:
                delay = retry_delay(message.attempt, self.settings.retry_delays_seconds)
                item.republish = self._copy(
                    item, message.attempt + 1, retry_queue(self.channel, delay)
                )
            elif item.outcome == "held" and message is not None:
                delay = min(self.settings.retry_delays_seconds)
                item.republish = self._copy(item, message.attempt, retry_queue(self.channel, delay))
            elif item.outcome == "dead_lettered":
                dead = store.DeadLetter(
                    id=new_id(),
                    delivery_id=message.delivery_id if message is not None and item.known else None,
                    channel=str(self.channel),
                    queue=self.queue,
                    reason=item.detail or "dead-lettered",
                    attempts=message.attempt if message is not None else 1,
                    payload=item.incoming.body,
                )
                dead_letters.append(dead)
                item.republish = Outgoing(
                    DEAD_LETTER_QUEUE,
                    item.incoming.body,
                    str(dead.id),
                    {
                        "x-reason": dead.reason[:500],
                        "x-attempts": dead.attempts,
                        "x-channel": str(self.channel),
                        "x-original-queue": self.queue,
                        "x-delivery-id": str(dead.delivery_id or ""),
                    },
                    content_type=item.incoming.content_type or "application/json",
                )
        return attempts, dead_letters

    def _copy(self, item: _Item, attempt: int, queue: str) -> Outgoing:
        message = item.message
        assert message is not None
        body = message.model_copy(update={"attempt": attempt}).to_bytes()
        headers = {**message.headers(), **tracing.headers_of(item.span)}
        return Outgoing(queue, body, str(message.delivery_id), headers)


_ATTEMPT_OUTCOME = {
    "sent": "sent",
    "retried": "retry",
    "dead_lettered": "failed",
    "duplicate": "duplicate",
}


class _StageClock:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        labelled(metrics.WORKER_STAGE_SECONDS, self.channel, stage).inc(now - self.last)
        self.last = now


def create_sender(channel: Channel, settings: WorkerSettings) -> Sender:
    timeout = settings.provider_timeout_seconds
    if channel is Channel.EMAIL:
        return SmtpSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.mail_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            tls=settings.smtp_tls,
            timeout=timeout,
            connections=min(settings.concurrency, 16),
        )
    if channel is Channel.SMS:
        return HttpSender(
            url=settings.sms_provider_url,
            token=settings.sms_provider_token,
            body=sms_body,
            timeout=timeout,
            connections=settings.concurrency,
        )
    return HttpSender(
        url=settings.push_provider_url,
        token=settings.push_provider_token,
        body=push_body,
        timeout=timeout,
        connections=settings.concurrency,
    )


def create_worker_app(channel: Channel, settings: WorkerSettings | None = None) -> FastAPI:
    """The worker process: its job in a kit runtime, and the probes and metrics over HTTP."""
    settings = settings or WorkerSettings()
    settings = settings.model_copy(update={"service_name": f"{channel}-worker"})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = create_pool(settings, repo.SCHEMA)
        await pool.open(wait=True, timeout=30)
        sender = create_sender(channel, settings)
        runtime = Runtime(settings.service_name, stop_timeout=settings.provider_timeout_seconds + 5)
        renderer = Renderer(channel)
        runtime.add("deliveries", lambda: ChannelWorker(channel, settings, pool, sender, renderer))
        runtime.attach(app)

        async def rabbitmq_ready() -> None:
            await declare_queues(settings.rabbitmq_url, [Queue(WORK_QUEUES[channel])], passive=True)

        async def postgres_ready() -> None:
            async with pool.connection() as conn:
                await conn.execute("SELECT 1 FROM deliveries LIMIT 1")

        add_readiness_check(app, "rabbitmq", rabbitmq_ready)
        add_readiness_check(app, "postgres", postgres_ready)
        runtime.start()
        try:
            yield
        finally:
            await runtime.stop()
            await sender.close()
            await pool.close()

    return create_service_app(settings, f"RealTimeOrder {channel} worker", lifespan)
