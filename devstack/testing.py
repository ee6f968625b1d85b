"""Throwaway backing servers for the test suite, on free ports under a temporary folder.

`tests/conftest.py` exposes these as session-scoped pytest fixtures; each server starts the
first time a test asks for it and stops when the session ends.
"""

from __future__ import annotations

import itertools
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from devstack import servers
from devstack.ports import HOST, free_port
from devstack.process import ManagedProcess


def start(spec: servers.ServerSpec, base: Path) -> ManagedProcess:
    return ManagedProcess(spec, base / "logs" / f"{spec.name}.log").start()


@dataclass
class PostgresServer:
    port: int
    password: str
    process: ManagedProcess
    host: str = HOST
    user: str = "postgres"
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def conninfo(self, dbname: str = "postgres") -> str:
        return servers.postgres_conninfo(self.port, self.password, dbname)

    def create_database(self, name: str = "test") -> str:
        """Create a fresh, empty database whose name starts with `name`; returns its name."""
        import psycopg
        from psycopg import sql

        prefix = re.sub(r"[^a-z0-9_]", "_", name.lower())[:40] or "test"
        dbname = f"{prefix}_{next(self._counter)}"
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        return dbname

    def env(self, dbname: str) -> dict[str, str]:
        """The DB_* variables a service reads, pointing at `dbname` on this server."""
        return {
            "DB_HOST": self.host,
            "DB_PORT": str(self.port),
            "DB_NAME": dbname,
            "DB_USER": self.user,
            "DB_PASSWORD": self.password,
        }


def start_postgres(base: Path) -> PostgresServer:
    port, password = free_port(), secrets.token_urlsafe(16)
    spec = servers.postgres(base / "postgres", port, password, durable=False)
    return PostgresServer(port=port, password=password, process=start(spec, base))


@dataclass
class RedisServer:
    port: int
    process: ManagedProcess
    host: str = HOST

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def start_redis(base: Path) -> RedisServer:
    port = free_port()
    spec = servers.redis(base / "redis", port, durable=False)
    return RedisServer(port=port, process=start(spec, base))


@dataclass
class RabbitMQServer:
    port: int
    management_port: int
    user: str
    password: str
    process: ManagedProcess
    epmd: ManagedProcess
    host: str = HOST

    @property
    def amqp_url(self) -> str:
        return f"amqp://{self.user}:{self.password}@{self.host}:{self.port}/%2F"

    @property
    def management_url(self) -> str:
        return f"http://{self.host}:{self.management_port}"

    def stop(self) -> None:
        try:
            self.process.stop()
        finally:
            self.epmd.stop()


def start_rabbitmq(base: Path) -> RabbitMQServer:
    ports = servers.RabbitPorts(
        amqp=free_port(), management=free_port(), dist=free_port(), epmd=free_port()
    )
    user, password = "test", secrets.token_urlsafe(12)
    epmd = start(servers.epmd(ports.epmd), base)
    try:
        process = start(servers.rabbitmq(base / "rabbitmq", ports, user, password), base)
    except BaseException:
        epmd.stop()
        raise
    return RabbitMQServer(
        port=ports.amqp,
        management_port=ports.management,
        user=user,
        password=password,
        process=process,
        epmd=epmd,
    )


@dataclass
class KafkaServer:
    port: int
    process: ManagedProcess
    host: str = HOST

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"


def start_kafka(base: Path) -> KafkaServer:
    port = free_port()
    spec = servers.kafka(base / "kafka", port, free_port())
    return KafkaServer(port=port, process=start(spec, base))
