"""The outbox relay, the batch consumer and dedupe on a real Postgres and Kafka broker."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from services.kit.db import Pool, apply_migrations, connect, create_pool
from services.kit.events import parse_envelope
from services.kit.kafka import (
    BatchConsumer,
    EventProducer,
    GroupHandler,
    MessageHandler,
    dead_letter_topic,
    ensure_topics,
)
from services.kit.order_events import ReservationExpired
from services.kit.outbox import (
    KIT_MIGRATIONS,
    OutboxRelay,
    add_to_outbox,
    claim_events,
)
from services.kit.settings import ServiceSettings
from tests.integration.kit.support import expired, outbox_topic
from tests.support import eventually

pytestmark = pytest.mark.integration
SCHEMA = "kit_test"


@pytest.fixture
async def settings(postgres_server: Any, kafka_server: Any) -> ServiceSettings:
    dbname = postgres_server.create_database("kit")
    return ServiceSettings(
        **postgres_server.env(dbname), KAFKA_BROKER=kafka_server.bootstrap, service_name="kit"
    )


@pytest.fixture
async def pool(settings: ServiceSettings) -> AsyncIterator[Pool]:
    pool = create_pool(settings, SCHEMA)
    await pool.open()
    await apply_migrations(pool, SCHEMA, KIT_MIGRATIONS, prefix="kit:")
    yield pool
    await pool.close()


def _consumer(
    settings: ServiceSettings,
    topic: str,
    handler: MessageHandler,
    dead_letters: EventProducer,
    group_handler: GroupHandler | None = None,
    batch_wait_ms: int = 0,
) -> BatchConsumer:
    """A consumer of `topic` in the group `g-<topic>`."""
    return BatchConsumer(
        settings.kafka_broker,
        f"g-{topic}",
        [topic],
        handler,
        service="kit",
        dead_letters=dead_letters,
        group_handler=group_handler,
        batch_wait_ms=batch_wait_ms,
    )


def _read_all(bootstrap: str, topic: str, expected: int, timeout: float = 20) -> list[Message]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    found: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(found) < expected and time.monotonic() < deadline:
        found += [m for m in consumer.consume(100, 0.5) if m.error() is None]
    consumer.close()
    return found


async def test_migrations_apply_once(pool: Pool) -> None:
    assert await apply_migrations(pool, SCHEMA, KIT_MIGRATIONS, prefix="kit:") == []


async def test_relay_publishes_committed_rows_in_order_and_only_those(
    pool: Pool, settings: ServiceSettings
) -> None:
    topic = f"kit-relay-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings.kafka_broker, [topic], partitions=1)
    events = [expired(f"o-{n}") for n in range(5)]
    async with pool.connection() as conn, conn.transaction():
        for item in events:
            await add_to_outbox(conn, topic, item)
    async with pool.connection() as conn:
        await conn.execute("BEGIN")
        await add_to_outbox(conn, topic, expired("rolled-back"))
        await conn.execute("ROLLBACK")

    producer = EventProducer(settings.kafka_broker, "kit-test", service="kit")
    # It polls every 30 s: past its first round, only the outbox's NOTIFY trigger wakes it.
    relay = OutboxRelay(pool, producer, settings.db_conninfo, SCHEMA, poll_interval=30)
    task = asyncio.create_task(relay.run())
    try:
        messages = await asyncio.to_thread(_read_all, settings.kafka_broker, topic, 5)
        # A row committed while the relay idles wakes it (the reader gives up after 20 s).
        async with pool.connection() as conn, conn.transaction():
            await add_to_outbox(conn, topic, expired("late"))
        late = await asyncio.to_thread(_read_all, settings.kafka_broker, topic, 6)
    finally:
        relay.stop()
        await task
        producer.close()

    assert [m.key() for m in messages] == [f"o-{n}".encode() for n in range(5)]
    ids = [parse_envelope(m.value() or b"", ReservationExpired).id for m in messages]
    assert ids == [e.id for e in events]
    assert [m.key() for m in late][-1] == b"late"
    assert b"rolled-back" not in [m.key() for m in late]
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
        assert (await cursor.fetchone() or {})["n"] == 0


@pytest.fixture
async def relays(pool: Pool, settings: ServiceSettings) -> AsyncIterator[Callable[[], OutboxRelay]]:
    """Makes relays of the test schema, as several replicas would run them (one producer);
    each is closed, and the producer with them, when the test ends."""
    producer = EventProducer(settings.kafka_broker, "kit-test", service="kit")
    made: list[OutboxRelay] = []

    def relay() -> OutboxRelay:
        made.append(OutboxRelay(pool, producer, settings.db_conninfo, SCHEMA))
        return made[-1]

    yield relay
    for each in made:
        await each.close()
    producer.close()


async def test_while_another_relay_leads_the_relay_publishes_nothing_then_takes_over(
    pool: Pool, settings: ServiceSettings, relays: Callable[[], OutboxRelay]
) -> None:
    topic = await outbox_topic(pool, settings.kafka_broker, "kit-relay-lock", "held")
    relay = relays()
    # Another replica's relay leads: its session holds the schema's relay lock.
    leader = await connect(settings.db_conninfo, SCHEMA)
    cursor = await leader.execute(
        "SELECT pg_try_advisory_lock(hashtext('outbox:' || current_schema())) AS leads"
    )
    assert (await cursor.fetchone() or {})["leads"] is True
    assert await relay.publish_batch() == 0
    assert await relay.publish_batch() == 0
    # That replica stops: its session ends, and the lock with it once the server has ended the
    # backend, a moment after the client closes.
    await leader.close()

    async def taken_over() -> bool:
        return await relay.publish_batch() == 1

    await eventually(taken_over, what="the relay to take the lead")
    assert [
        m.key() for m in await asyncio.to_thread(_read_all, settings.kafka_broker, topic, 1)
    ] == [b"held"]


async def test_a_leader_whose_session_the_server_ends_opens_another_and_loses_nothing(
    pool: Pool, settings: ServiceSettings, relays: Callable[[], OutboxRelay]
) -> None:
    topic = await outbox_topic(pool, settings.kafka_broker, "kit-relay-ended", "first")
    relay, other = relays(), relays()
    assert await relay.publish_batch() == 1
    assert await relay.publish_batch() == 0, "its next round marks what it published"
    assert await other.publish_batch() == 0, "the first relay leads"
    # The server ends the leader's session (a restart, a failover, an administrator).
    assert relay._session is not None
    ended = relay._session.pgconn.backend_pid
    async with pool.connection() as conn:
        await conn.execute("SELECT pg_terminate_backend(%s)", (ended,))
    async with pool.connection() as conn, conn.transaction():
        await add_to_outbox(conn, topic, expired("second"))

    async def taken_over() -> bool:
        return await other.publish_batch() == 1

    # The lock went with the ended session: the other relay takes the lead and the row.
    await eventually(taken_over, what="the other relay to take over")
    # The first relay sees its session ended, opens another, and follows.
    assert await relay.publish_batch() == 0
    assert relay._session is not None
    assert relay._session.pgconn.backend_pid != ended
    keys = [m.key() for m in await asyncio.to_thread(_read_all, settings.kafka_broker, topic, 2)]
    assert keys == [b"first", b"second"]
    # Its marks, on the new session too, commit without waiting for their flush.
    cursor = await relay._session.execute("SHOW synchronous_commit")
    assert await cursor.fetchone() == {"synchronous_commit": "off"}


async def test_a_round_marks_the_last_rounds_rows_and_rows_left_unmarked_go_again(
    pool: Pool, settings: ServiceSettings, relays: Callable[[], OutboxRelay]
) -> None:
    topic = await outbox_topic(pool, settings.kafka_broker, "kit-relay-marks", "a", "b")
    relay, successor = relays(), relays()

    async def unpublished() -> int:
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL"
            )
            return int((await cursor.fetchone() or {})["n"])

    assert await relay.publish_batch() == 2
    assert await unpublished() == 2, "marked by the next round's statement"
    assert await relay.publish_batch() == 0
    assert await unpublished() == 0
    async with pool.connection() as conn, conn.transaction():
        await add_to_outbox(conn, topic, expired("c"))
    assert await relay.publish_batch() == 1
    # The relay's process dies before another round: its session ends, nothing marked.
    assert relay._session is not None
    await relay._session.close()

    async def succeeded() -> bool:
        return await successor.publish_batch() == 1  # c again

    await eventually(succeeded, what="the successor to take the lead")
    await successor.close()
    assert await unpublished() == 0, "the successor marked it when it stopped"
    keys = [m.key() for m in await asyncio.to_thread(_read_all, settings.kafka_broker, topic, 4)]
    assert keys == [b"a", b"b", b"c", b"c"]


async def test_claim_events_refuses_a_redelivery(pool: Pool) -> None:
    event_id = str(uuid.uuid4())
    async with pool.connection() as conn, conn.transaction():
        assert await claim_events(conn, [(event_id, "t")]) == {event_id}
    async with pool.connection() as conn, conn.transaction():
        assert await claim_events(conn, [(event_id, "t")]) == set()


async def test_claim_events_claims_each_new_event_once_in_one_statement(pool: Pool) -> None:
    seen, new, upper = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()).upper()
    async with pool.connection() as conn, conn.transaction():
        assert await claim_events(conn, [(seen, "t")]) == {seen}
    async with pool.connection() as conn, conn.transaction():
        claimed = await claim_events(conn, [(seen, "t"), (new, "t"), (new, "t"), (upper, "u")])
    assert claimed == {new, upper}, "the ids as given, each new one once, none seen before"
    async with pool.connection() as conn, conn.transaction():
        assert await claim_events(conn, [(new, "t")]) == set()
        assert await claim_events(conn, [(upper.lower(), "u")]) == set()


async def test_consumer_dead_letters_a_poison_message_and_moves_on(
    settings: ServiceSettings,
) -> None:
    topic = f"kit-dlq-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings.kafka_broker, [topic, dead_letter_topic(topic)], partitions=1)
    producer = EventProducer(settings.kafka_broker, "kit-test", service="kit")
    await producer.publish(topic, "k1", b"poison")
    await producer.publish(topic, "k2", b"good")
    handled: list[bytes] = []

    async def handler(message: Message) -> None:
        if message.value() == b"poison":
            raise ValueError("cannot parse")
        handled.append(message.value() or b"")
        consumer.stop()

    consumer = _consumer(settings, topic, handler, producer)
    async with asyncio.timeout(30):
        await consumer.run()
    dead = await asyncio.to_thread(_read_all, settings.kafka_broker, dead_letter_topic(topic), 1)
    producer.close()
    assert handled == [b"good"]
    assert dead[0].value() == b"poison"
    headers: dict[str, Any] = dict(dead[0].headers() or [])
    assert b"cannot parse" in headers["dlq-error"]
    assert headers["dlq-source-topic"] == topic.encode()


def _committed(bootstrap: str, group: str, topic: str) -> int:
    """The group's committed offset of the topic's only partition (-1001 when none)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])
    result = admin.list_consumer_group_offsets([request])[group].result(timeout=10)
    return int(result.topic_partitions[0].offset)


async def test_processed_offsets_are_committed_while_running_and_at_stop(
    settings: ServiceSettings,
) -> None:
    topic = f"kit-commit-{uuid.uuid4().hex[:8]}"
    group = f"g-{topic}"
    ensure_topics(settings.kafka_broker, [topic, dead_letter_topic(topic)], partitions=1)
    producer = EventProducer(settings.kafka_broker, "kit-test", service="kit")
    for n in range(2):
        await producer.publish(topic, f"k{n}", b"first")
    handled: list[bytes] = []

    async def handler(message: Message) -> None:
        handled.append(message.value() or b"")
        if message.value() == b"last":
            consumer.stop()

    consumer = _consumer(settings, topic, handler, producer)
    running = asyncio.create_task(consumer.run())

    async def committed(offset: int) -> bool:
        return await asyncio.to_thread(_committed, settings.kafka_broker, group, topic) == offset

    # In the background, while the consumer keeps running.
    await eventually(lambda: committed(2), what="the first two offsets to be committed")
    await producer.publish(topic, "k2", b"last")
    async with asyncio.timeout(30):
        await running
    producer.close()
    assert handled == [b"first", b"first", b"last"]
    assert await committed(3), "stopping commits what was processed"


async def _published(settings: ServiceSettings, *values: bytes) -> tuple[str, EventProducer]:
    """A new one-partition topic holding `values`, each under its own key, and its producer."""
    topic = f"kit-group-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings.kafka_broker, [topic, dead_letter_topic(topic)], partitions=1)
    producer = EventProducer(settings.kafka_broker, "kit-test", service="kit")
    for n, value in enumerate(values):
        await producer.publish(topic, f"k{n}", value)
    return topic, producer


async def test_a_batch_goes_to_the_group_handler_whole(settings: ServiceSettings) -> None:
    topic, producer = await _published(settings, b"a", b"b", b"c")
    group = f"g-{topic}"
    groups: list[list[bytes]] = []
    one_by_one: list[bytes] = []

    async def apply_group(messages: list[Message]) -> None:
        groups.append([m.value() or b"" for m in messages])
        consumer.stop()

    async def handler(message: Message) -> None:
        one_by_one.append(message.value() or b"")

    consumer = _consumer(settings, topic, handler, producer, apply_group)
    async with asyncio.timeout(30):
        await consumer.run()
    producer.close()
    assert groups == [[b"a", b"b", b"c"]], "in offset order, the messages fetched together"
    assert one_by_one == [], "a group that succeeded is not applied again"
    assert _committed(settings.kafka_broker, group, topic) == 3


async def test_a_gathering_consumer_gets_the_events_of_its_wait_as_one_batch(
    settings: ServiceSettings,
) -> None:
    topic, producer = await _published(settings, b"ready")
    calls: list[list[bytes]] = []

    async def apply_group(messages: list[Message]) -> None:
        calls.append([m.value() or b"" for m in messages])

    async def handler(message: Message) -> None:
        calls.append([message.value() or b""])

    consumer = _consumer(settings, topic, handler, producer, apply_group, batch_wait_ms=1000)
    running = asyncio.create_task(consumer.run())

    async def handled(count: int) -> bool:
        return sum(len(call) for call in calls) == count

    try:
        await eventually(lambda: handled(1), what="the consumer to join and read")
        sent = [f"e{n}".encode() for n in range(6)]
        for n, value in enumerate(sent):  # one every 50 ms: 250 ms from the first to the last
            await producer.publish(topic, f"k{n}", value)
            await asyncio.sleep(0.05)
        await eventually(lambda: handled(7), what="the six events")
    finally:
        consumer.stop()
        async with asyncio.timeout(30):
            await running
        producer.close()
    later = calls[1:]
    assert [value for call in later for value in call] == sent, "each once, in offset order"
    # Without the wait each would come in a fetch answer of its own, 50 ms after the last; the
    # broker holds a fetch 1 s, so 250 ms of events fall in one hold or straddle two.
    assert len(later) <= 2, later


async def test_a_failed_group_is_applied_one_by_one_and_its_poison_dead_lettered(
    settings: ServiceSettings,
) -> None:
    topic, producer = await _published(settings, b"good-1", b"poison", b"good-2")
    groups: list[list[bytes]] = []
    handled: list[bytes] = []

    async def apply_group(messages: list[Message]) -> None:
        groups.append([m.value() or b"" for m in messages])
        raise RuntimeError("one of the group failed")

    async def handler(message: Message) -> None:
        if message.value() == b"poison":
            raise ValueError("cannot parse")
        handled.append(message.value() or b"")
        if len(handled) == 2:
            consumer.stop()

    consumer = _consumer(settings, topic, handler, producer, apply_group)
    async with asyncio.timeout(30):
        await consumer.run()
    dead = await asyncio.to_thread(_read_all, settings.kafka_broker, dead_letter_topic(topic), 1)
    producer.close()
    assert groups == [[b"good-1", b"poison", b"good-2"]]
    assert sorted(handled) == [b"good-1", b"good-2"], "each good message once"
    assert [m.value() for m in dead] == [b"poison"]
