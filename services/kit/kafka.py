"""Kafka on confluent-kafka: an idempotent producer and a batch consumer that commits after work.

The producer is idempotent with acks=all; a poll thread serves delivery reports, and `publish`
awaits the broker's acknowledgement. The reports one poll serves (a relay's batch is
acknowledged in one produce response) reach the event loop together, in one wake-up, not one
`call_soon_threadsafe` each: every such call writes to the loop's wake-up pipe.

The consumer reads in batches and stores offsets for the background commit only once the whole
batch is processed, so a crash means a redelivery (which consumers dedupe by event id), never a
loss. A batch of several messages goes first to the group handler, when there is one, in
groups of up to `group_size`, each key's messages in one group (`keyed_groups`): one
transaction for the group (kit/consumer.py). A group that fails is applied again message by
message, as a single message always is: the per-message handler, messages of one key in order,
different keys concurrently. A message whose handler keeps failing goes, with its error, to
`<topic>.dlq` instead of blocking its partition.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, Self

from confluent_kafka import (
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    NewTopic,
    OffsetSpec,
)
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.kit.gather import BusyGather
from services.kit.metrics import (
    CONSUMER_LAG,
    DEAD_LETTER_DEPTH,
    EVENTS_CONSUMED,
    EVENTS_PUBLISHED,
    GROUPS_FAILED,
    labelled,
)
from services.kit.runtime import wait_event

log = logging.getLogger(__name__)
DEAD_LETTER_SUFFIX = ".dlq"
LAG_SAMPLE_SECONDS = 1.0
FETCH_WAIT_MS = 500
GATHER_MIN_BYTES = 1 << 20
"""The fetch size a gathering consumer asks the broker to wait for: more than the events of
any wait come to, so its `batch_wait_ms` decides when the answer comes."""
COMMIT_INTERVAL_MS = 1000
DEAD_LETTER_SAMPLE_SECONDS = 30.0
SAMPLE_TIMEOUT_SECONDS = 5.0
GROUP_SIZE = 50
MessageHandler = Callable[[Message], Awaitable[None]]
GroupHandler = Callable[[list[Message]], Awaitable[None]]


def fetch_config(batch_wait_ms: int) -> dict[str, int]:
    """How long the broker holds a consumer's fetch.

    0: the broker answers as soon as a message arrives, so a long wait adds no latency; it
    only bounds how often an idle consumer asks (10 ms here once made the four consumers of a
    stack cost the broker a fifth of a core doing nothing).

    Above 0 (a consumer no one waits on, `CONSUMER_BATCH_WAIT_MS`): the broker holds each
    fetch for `batch_wait_ms` unless `GATHER_MIN_BYTES` arrive first, and answers with what
    came meanwhile. The events of that time reach the consumer as one batch, applied in one
    group transaction, instead of one fetch answer, one wake-up and one commit each; an event
    waits at most that long more. A consumer that is behind gets its backlog at once.
    """
    if batch_wait_ms <= 0:
        return {"fetch.wait.max.ms": FETCH_WAIT_MS, "fetch.min.bytes": 1}
    return {"fetch.wait.max.ms": batch_wait_ms, "fetch.min.bytes": GATHER_MIN_BYTES}


def keyed_groups(messages: list[Message], size: int) -> list[list[Message]]:
    """A batch in groups of up to `size` messages, every key's messages in one group (a key's
    messages alone may make a bigger one), in their order, the keys in the order of their first
    message; a message without a key keeps its place.

    A batch comes partition by partition, so one order's events from two topics (its creation
    and its confirmation) may sit far apart in it. Cut by position, a group could take the
    confirmation and the next one the creation; a handler that applies each order's events of
    a group in version order (notifications) would then find the creation stale behind its own
    confirmation."""
    by_key: dict[object, list[Message]] = {}
    for n, message in enumerate(messages):
        key = message.key()
        # A message without a key is bound to no other: a place of its own.
        by_key.setdefault(n if key is None else key, []).append(message)
    groups: list[list[Message]] = []
    group: list[Message] = []
    for keyed in by_key.values():
        if group and len(group) + len(keyed) > size:
            groups.append(group)
            group = []
        group.extend(keyed)
    if group:
        groups.append(group)
    return groups


def dead_letter_topic(topic: str) -> str:
    return f"{topic}{DEAD_LETTER_SUFFIX}"


class EventProducer:
    """An idempotent, acks=all producer whose `publish` awaits the broker's acknowledgement.

    `linger.ms` is 0: the relays hand a whole batch of rows to the producer at once, and what is
    queued when its thread sends goes in one request anyway, so waiting longer for more only
    delayed each hop (1 ms of linger made a produce-to-consume hop 2.6 ms instead of 1.4 ms on
    the local broker).
    """

    def __init__(self, bootstrap: str, client_id: str, *, service: str, linger_ms: int = 0) -> None:
        self.service = service
        self._producer = Producer(
            client_config(
                bootstrap,
                **{
                    "client.id": client_id,
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": linger_ms,
                    "compression.type": "lz4",
                    "message.timeout.ms": 30000,
                },
            )
        )
        self._reports: dict[
            asyncio.AbstractEventLoop, deque[tuple[asyncio.Future[None], KafkaError | None]]
        ] = {}
        """Per event loop (a producer is used from one; tests open several), the reports its
        poll served that the loop has not settled yet."""
        self._waking: set[asyncio.AbstractEventLoop] = set()
        """The loops woken to settle their reports, which have not run that yet."""
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, name=f"{client_id}-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.05)

    async def publish(
        self, topic: str, key: str, value: bytes, headers: dict[str, str] | None = None
    ) -> None:
        """Send one message and wait until the broker has it."""
        await self.publish_nowait(topic, key, value, headers)

    def publish_nowait(
        self, topic: str, key: str, value: bytes, headers: dict[str, str] | None = None
    ) -> asyncio.Future[None]:
        """Send one message; the returned future resolves on the broker's acknowledgement."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        on_delivery = functools.partial(self._delivered, future)
        while True:
            try:
                self._producer.produce(
                    topic,
                    value=value,
                    key=key.encode(),
                    headers=list((headers or {}).items()),
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                self._producer.poll(0.01)
        labelled(EVENTS_PUBLISHED, self.service, topic).inc()
        return future

    def _delivered(
        self, future: asyncio.Future[None], err: KafkaError | None, _msg: Message
    ) -> None:
        """A delivery report, on the thread that polled: queued for the future's loop, which
        is woken once for the reports that arrive before it runs."""
        loop = future.get_loop()
        # Reports may come from two threads at once (the poll thread, and the loop's while
        # `publish_nowait` waits for room): `setdefault` makes one deque per loop either way.
        reports = self._reports.get(loop)
        if reports is None:
            reports = self._reports.setdefault(loop, deque())
        reports.append((future, err))
        if loop not in self._waking:
            self._waking.add(loop)
            try:
                loop.call_soon_threadsafe(self._settle, loop, reports)
            except RuntimeError:  # the loop is closed: nobody waits for its reports
                self._waking.discard(loop)
                self._reports.pop(loop, None)

    def _settle(
        self,
        loop: asyncio.AbstractEventLoop,
        reports: deque[tuple[asyncio.Future[None], KafkaError | None]],
    ) -> None:
        """Resolve the futures of the loop's reports queued so far (on that loop)."""
        self._waking.discard(loop)
        while reports:
            _settle_one(*reports.popleft())

    def close(self, timeout: float = 10.0) -> None:
        if self._stopping.is_set():
            return
        remaining = self._producer.flush(timeout)
        self._stopping.set()
        self._poller.join(timeout=2)
        # Dropping the last reference destroys the librdkafka handle, which otherwise keeps
        # reconnecting to a broker that is gone.
        del self._producer
        if remaining:
            log.error("producer closed with undelivered messages", extra={"count": remaining})


def _settle_one(future: asyncio.Future[None], err: KafkaError | None) -> None:
    if future.done():
        return
    if err is None:
        future.set_result(None)
    else:
        future.set_exception(KafkaException(err))


class BatchConsumer:
    """Consumes topics in batches with a per-message handler; a batch's offsets are committed
    once it is processed."""

    def __init__(
        self,
        bootstrap: str,
        group_id: str,
        topics: Iterable[str],
        handler: MessageHandler,
        *,
        service: str,
        dead_letters: EventProducer,
        batch_size: int = 200,
        poll_timeout: float = 0.5,
        attempts: int = 3,
        concurrency: int = 8,
        group_handler: GroupHandler | None = None,
        group_size: int = GROUP_SIZE,
        batch_wait_ms: int = 0,
        busy_gather_ms: int = 0,
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        self.topics = list(topics)
        self.concurrency = concurrency
        self.handler = handler
        self.group_handler = group_handler
        self.group_size = group_size
        self.service = service
        self.dead_letters = dead_letters
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.attempts = attempts
        self._stop = asyncio.Event()
        config = client_config(
            bootstrap,
            **{
                "group.id": group_id,
                # Offsets are stored only once their batch is processed (`_store`), and the
                # stored ones committed in the background every second, on a rebalance and at
                # close: one commit request a second per consumer instead of one per batch.
                # A crash redelivers at most the last second's events, which consumers dedupe.
                "enable.auto.commit": True,
                "enable.auto.offset.store": False,
                "auto.commit.interval.ms": COMMIT_INTERVAL_MS,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
                "session.timeout.ms": 10000,
                **fetch_config(batch_wait_ms),
            },
        )
        config.update(extra_config or {})
        self._consumer = Consumer(config)
        self._gather = BusyGather(busy_gather_ms)
        self._lag = ConsumerLag(self._consumer, service, self.topics)
        self._dead_letter_depth = DeadLetterDepth(client_config(bootstrap), service, self.topics)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Consume until `stop()`; then commit what was processed and leave the group (closing
        commits the stored offsets)."""
        self._consumer.subscribe(self.topics)
        log.info("consuming", extra={"topics": self.topics})
        depth = asyncio.create_task(self._dead_letter_depth.run(self._stop))
        try:
            while not self._stop.is_set():
                batch = await asyncio.to_thread(self._fetch)
                for message in batch:
                    if message.error() is not None:
                        log.warning("consume error", extra={"error": str(message.error())})
                messages = [m for m in batch if m.error() is None]
                if messages:
                    await self._process_batch(messages)
                    self._store(messages)
        finally:
            depth.cancel()
            await asyncio.gather(depth, return_exceptions=True)
            await asyncio.to_thread(self._consumer.close)

    def _fetch(self) -> list[Message]:
        # `consume(n, timeout)` waits for n messages or the timeout, which adds the whole
        # timeout to every event's latency at low rates. Waiting for the first message with
        # `poll` and then draining what is already fetched keeps batches without that delay;
        # only a busy consumer waits a little for more (`BusyGather`).
        self._lag.sample()
        first = self._consumer.poll(self.poll_timeout)
        if first is None:
            return []
        batch = [first, *self._consumer.consume(self.batch_size - 1, self._gather.wait_seconds())]
        self._gather.took(len(batch))
        return batch

    async def _process_batch(self, messages: list[Message]) -> None:
        """Process a batch: in groups when there is a group handler and more than one message,
        else (and for a group that failed) one message at a time."""
        if self.group_handler is None or len(messages) == 1:
            await self._process_each(messages)
            return
        for group in keyed_groups(messages, self.group_size):
            try:
                await self.group_handler(group)
            except Exception as exc:  # nothing of the group was kept: apply it one by one
                GROUPS_FAILED.labels(self.service).inc()
                log.warning(
                    "group failed; applying its messages one by one",
                    extra={"messages": len(group), "error": repr(exc)},
                )
                await self._process_each(group)

    async def _process_each(self, messages: list[Message]) -> None:
        """Process messages one by one: one key's messages in order, different keys concurrently.

        Each handler call waits mostly on its database round trips and commit, so running the
        messages of different orders side by side multiplies throughput, while every order's
        own events keep their order. The batch is committed only when all of it is done.
        """
        by_key: dict[bytes | None, list[Message]] = {}
        for message in messages:
            by_key.setdefault(message.key(), []).append(message)
        slots = asyncio.Semaphore(self.concurrency)

        async def in_order(group: list[Message]) -> None:
            async with slots:
                for message in group:
                    await self._process(message)

        await asyncio.gather(*(in_order(group) for group in by_key.values()))

    def _store(self, messages: list[Message]) -> None:
        """Mark a processed batch for the next background commit: per partition, the offset
        after its last message."""
        following: dict[tuple[str, int], int] = {}
        for message in messages:
            key = (message.topic() or "", message.partition() or 0)
            following[key] = max(following.get(key, 0), (message.offset() or 0) + 1)
        try:
            self._consumer.store_offsets(
                offsets=[TopicPartition(t, p, offset) for (t, p), offset in following.items()]
            )
        except KafkaException as exc:
            # The partition moved in a rebalance: its new owner redelivers these (consumers
            # dedupe).
            log.warning("offsets not stored; continuing", extra={"error": str(exc)})

    async def _dead_letter(self, message: Message, topic: str, error: Exception | None) -> None:
        headers = {
            "dlq-error": repr(error)[:1000],
            "dlq-source-topic": topic,
            "dlq-source-partition": str(message.partition()),
            "dlq-source-offset": str(message.offset()),
        }
        delay = 0.5
        while True:
            try:
                await self.dead_letters.publish(
                    dead_letter_topic(topic),
                    (message.key() or b"").decode(),
                    message.value() or b"",
                    headers,
                )
                return
            except KafkaException as exc:
                # Never skip a message we could not park: hold the partition until Kafka
                # takes it, so nothing is committed past an event that went nowhere.
                log.error("dead-letter publish failed; retrying", extra={"error": str(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _process(self, message: Message) -> None:
        topic = message.topic() or "unknown"
        error: Exception | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                await self.handler(message)
            except Exception as exc:  # the handler's failure decides retry or dead letter
                error = exc
                log.warning(
                    "event handler failed",
                    extra={"topic": topic, "attempt": attempt, "error": repr(exc)},
                )
                await asyncio.sleep(0.05 * attempt)
            else:
                return
        await self._dead_letter(message, topic, error)
        EVENTS_CONSUMED.labels(self.service, topic, "dead_lettered").inc()
        log.error(
            "event dead-lettered",
            extra={"topic": topic, "error": repr(error), "to": dead_letter_topic(topic)},
        )


class ConsumerLag:
    """The lag gauge of one consumer, sampled every second from its fetch thread.

    It needs no broker round trip: librdkafka keeps each partition's high watermark from its
    fetch responses, and the position is local. Sampling never fails the consumer; a topic the
    consumer holds no partition of (after a rebalance) reads 0 rather than a stale value.
    """

    def __init__(self, consumer: Consumer, service: str, topics: list[str]) -> None:
        self.consumer = consumer
        self.service = service
        self.topics = topics
        self._due = 0.0

    def sample(self) -> None:
        now = time.monotonic()
        if now < self._due:
            return
        self._due = now + LAG_SAMPLE_SECONDS
        lag = dict.fromkeys(self.topics, 0)
        try:
            positions = self.consumer.position(self.consumer.assignment())
            for position in positions:
                _low, high = self.consumer.get_watermark_offsets(position, cached=True)
                if position.offset != OFFSET_INVALID and high != OFFSET_INVALID:
                    lag[position.topic] = lag.get(position.topic, 0) + max(
                        high - position.offset, 0
                    )
        except KafkaException as exc:
            log.debug("consumer lag not sampled", extra={"error": str(exc)})
            return
        for topic, messages in lag.items():
            CONSUMER_LAG.labels(self.service, topic).set(messages)


class DeadLetterDepth:
    """The depth of a consumer's dead-letter topics, asked of the broker by an admin client of
    its own every `DEAD_LETTER_SAMPLE_SECONDS`.

    A dead-letter topic is nobody's assignment, so its depth costs a metadata and two offsets
    requests. They go through the admin client's futures and never through the consumer's
    handle: on the fetch thread, one slow answer held every event behind it for as long as the
    request's timeout. A dead-letter topic that does not exist yet reads 0.
    """

    def __init__(self, config: dict[str, Any], service: str, topics: list[str]) -> None:
        self.admin = AdminClient(config)
        self.service = service
        self.topics = topics

    async def run(self, stop: asyncio.Event) -> None:
        """Sample until `stop` is set; a failed sample is logged and tried again next time."""
        while not stop.is_set():
            try:
                await self.sample()
            except KafkaException as exc:
                log.debug("dead-letter depth not sampled", extra={"error": str(exc)})
            await wait_event(stop, DEAD_LETTER_SAMPLE_SECONDS)

    async def sample(self) -> None:
        names = [dead_letter_topic(topic) for topic in self.topics]
        described = self.admin.describe_topics(
            TopicCollection(names), request_timeout=SAMPLE_TIMEOUT_SECONDS
        )
        partitions: dict[str, list[TopicPartition]] = {}
        for name in names:
            try:
                description = await asyncio.wrap_future(described[name])
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise
                partitions[name] = []
                continue
            partitions[name] = [TopicPartition(name, p.id) for p in description.partitions]
        wanted = [tp for tps in partitions.values() for tp in tps]
        earliest = await self._offsets(wanted, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        latest = await self._offsets(wanted, OffsetSpec.latest())  # type: ignore[no-untyped-call]
        for topic, name in zip(self.topics, names, strict=True):
            depth = sum(
                max(latest[(tp.topic, tp.partition)] - earliest[(tp.topic, tp.partition)], 0)
                for tp in partitions[name]
            )
            DEAD_LETTER_DEPTH.labels(self.service, topic).set(depth)

    async def _offsets(
        self, partitions: list[TopicPartition], spec: OffsetSpec
    ) -> dict[tuple[str, int], int]:
        if not partitions:
            return {}
        futures = self.admin.list_offsets(
            {tp: spec for tp in partitions}, request_timeout=SAMPLE_TIMEOUT_SECONDS
        )
        offsets: dict[tuple[str, int], int] = {}
        for tp, future in futures.items():
            result = await asyncio.wrap_future(future)
            offsets[(tp.topic, tp.partition)] = result.offset
        return offsets


class KafkaSecurity(BaseSettings):
    """How every Kafka client of a process reaches the brokers: the librdkafka properties
    `security.protocol`, `sasl.mechanism`, `sasl.username`, `sasl.password` and
    `ssl.ca.location`, from KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME,
    KAFKA_SASL_PASSWORD and KAFKA_SSL_CA_LOCATION (the chart sets them for an external Kafka
    over TLS or SASL). Unset, plaintext: the local stack's broker."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", alias="KAFKA_SECURITY_PROTOCOL"
    )
    sasl_mechanism: str | None = Field(default=None, alias="KAFKA_SASL_MECHANISM")
    sasl_username: str | None = Field(default=None, alias="KAFKA_SASL_USERNAME")
    sasl_password: str | None = Field(default=None, alias="KAFKA_SASL_PASSWORD", repr=False)
    ssl_ca_location: str | None = Field(default=None, alias="KAFKA_SSL_CA_LOCATION")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.security_protocol.startswith("SASL_"):
            if not self.sasl_mechanism:
                raise ValueError(f"{self.security_protocol} needs KAFKA_SASL_MECHANISM")
            if self.sasl_mechanism != "GSSAPI" and not (self.sasl_username and self.sasl_password):
                raise ValueError(
                    f"SASL {self.sasl_mechanism} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
                )
        return self

    def client_config(self) -> dict[str, str]:
        config: dict[str, str] = {"security.protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL_"):
            config["sasl.mechanism"] = self.sasl_mechanism or ""
            if self.sasl_username and self.sasl_password:
                config["sasl.username"] = self.sasl_username
                config["sasl.password"] = self.sasl_password
        if self.ssl_ca_location and self.security_protocol.endswith("SSL"):
            config["ssl.ca.location"] = self.ssl_ca_location
        return config


@functools.cache
def _security() -> dict[str, str]:
    return KafkaSecurity().client_config()


def client_config(bootstrap: str, **properties: Any) -> dict[str, Any]:
    """A Kafka client's configuration: the brokers, this process's security settings
    (`KafkaSecurity`) and the client's own properties (librdkafka names, dots as given)."""
    return {"bootstrap.servers": bootstrap, **_security(), **properties}


class TopicSettings(BaseSettings):
    """Who creates the topics. In the local stack the services do at start-up (the default); in
    a cluster the operator's EventTopics own them, with the partitions and configs the chart
    gives, so the chart sets KAFKA_CREATE_TOPICS=false and a service never creates a topic the
    operator would later find with other settings."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    create_topics: bool = Field(default=True, alias="KAFKA_CREATE_TOPICS")


def creates_topics() -> bool:
    return TopicSettings().create_topics


def ensure_topics(bootstrap: str, topics: Iterable[str], partitions: int = 3) -> None:
    """Create the topics that do not exist yet (single-replica defaults for local brokers)."""
    admin = AdminClient(client_config(bootstrap))
    existing = set(admin.list_topics(timeout=10).topics)
    missing = [NewTopic(t, num_partitions=partitions, replication_factor=-1) for t in topics]
    missing = [t for t in missing if t.topic not in existing]
    if not missing:
        return
    for topic, future in admin.create_topics(missing, operation_timeout=10).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
        log.info("created topic", extra={"topic": topic})


def ping(bootstrap: str) -> None:
    """Raise unless a broker answers a metadata request."""
    AdminClient(client_config(bootstrap)).list_topics(timeout=2)
