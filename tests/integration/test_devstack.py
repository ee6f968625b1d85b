"""The test fixtures' servers are real and usable the way the services use them."""

from __future__ import annotations

import psycopg
import pytest
import redis

from devstack.testing import PostgresServer, RedisServer

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
