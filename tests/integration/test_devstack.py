"""The test fixtures' servers are real and usable the way the services use them."""

from __future__ import annotations

import uuid

import httpx
import pika
import psycopg
import pytest
import redis
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from devstack.testing import KafkaServer, PostgresServer, RabbitMQServer, RedisServer

pytestmark = pytest.mark.integration


def test_postgres_round_trip_in_a_fresh_database(postgres_server: PostgresServer) -> None:
    first = postgres_server.create_database("orders")
    second = postgres_server.create_database("orders")
    assert first != second

    with psycopg.connect(postgres_server.conninfo(first)) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO items VALUES (1, 'widget')")
        conn.commit()
        assert conn.execute("SELECT name FROM items WHERE id = 1").fetchone() == ("widget",)
    with psycopg.connect(postgres_server.conninfo(second)) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'items'")
        assert tables.fetchone() == (0,)


def test_postgres_refuses_a_wrong_password(postgres_server: PostgresServer) -> None:
    conninfo = postgres_server.conninfo().replace(postgres_server.password, "wrong")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(conninfo)


def test_postgres_env_matches_the_services_settings(postgres_server: PostgresServer) -> None:
    from services.kit.settings import ServiceSettings

    dbname = postgres_server.create_database("settings")
    settings = ServiceSettings(**postgres_server.env(dbname))  # type: ignore[arg-type]
    with psycopg.connect(settings.db_conninfo) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (dbname,)


def test_redis_set_and_get(redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url, decode_responses=True) as client:
        client.set("greeting", "hello", ex=60)
        assert client.get("greeting") == "hello"
        assert client.ttl("greeting") > 0


def test_rabbitmq_publish_with_confirms_then_get(rabbitmq_server: RabbitMQServer) -> None:
    queue = f"test-{uuid.uuid4().hex[:8]}"
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_server.amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare(queue, durable=True)
        channel.basic_publish("", queue, b"order shipped", pika.BasicProperties(delivery_mode=2))
        method, _properties, body = channel.basic_get(queue, auto_ack=True)
        assert method is not None
        assert body == b"order shipped"
    finally:
        connection.close()


def test_rabbitmq_keeps_quorum_queues_with_dead_lettering(rabbitmq_server: RabbitMQServer) -> None:
    """The notifications service's queues are durable quorum queues that dead-letter."""
    work, dead = f"test-{uuid.uuid4().hex[:8]}", f"test-{uuid.uuid4().hex[:8]}.dlq"
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_server.amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare(dead, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_declare(
            work,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": dead,
                "x-delivery-limit": 5,
            },
        )
        channel.basic_publish("", work, b"order confirmed", pika.BasicProperties(delivery_mode=2))
        method, _properties, _body = channel.basic_get(work)
        assert method is not None
        assert method.delivery_tag is not None
        channel.basic_reject(method.delivery_tag, requeue=False)
        body = None
        for _ in range(100):  # dead-lettering is asynchronous; bounded at 5 s
            method, _properties, body = channel.basic_get(dead, auto_ack=True)
            if method is not None:
                break
            connection.sleep(0.05)
        assert body == b"order confirmed"
        channel.queue_delete(work)
        channel.queue_delete(dead)
    finally:
        connection.close()


def test_rabbitmq_management_api_answers_the_admin(rabbitmq_server: RabbitMQServer) -> None:
    auth = (rabbitmq_server.user, rabbitmq_server.password)
    with httpx.Client(base_url=rabbitmq_server.management_url, auth=auth, timeout=5) as client:
        whoami = client.get("/api/whoami")
        assert whoami.status_code == 200
        assert "administrator" in whoami.json()["tags"]
        overview = client.get("/api/overview").json()
        assert overview["node"].startswith(f"rabbit-{rabbitmq_server.port}@")
        assert client.get("/api/overview", auth=("guest", "wrong")).status_code == 401


def test_kafka_create_topic_produce_and_consume(kafka_server: KafkaServer) -> None:
    topic = f"test.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_server.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(
        timeout=30
    )
    assert topic in admin.list_topics(timeout=10).topics

    producer = Producer(
        {"bootstrap.servers": kafka_server.bootstrap, "enable.idempotence": True, "acks": "all"}
    )
    sent = {f"order-{n}": f"created {n}" for n in range(10)}
    for key, value in sent.items():
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_server.bootstrap,
            "group.id": f"test-{topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    received: dict[str, str] = {}
    try:
        consumer.subscribe([topic])
        for _ in range(60):
            for message in consumer.consume(num_messages=100, timeout=1):
                raw_key, raw_value = message.key(), message.value()
                assert message.error() is None
                assert raw_key is not None
                assert raw_value is not None
                received[raw_key.decode()] = raw_value.decode()
            if len(received) == len(sent):
                break
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert received == sent
