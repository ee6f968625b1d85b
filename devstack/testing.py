"""Throwaway backing servers for the test suite, on free ports under a temporary folder.

`tests/conftest.py` exposes these as session-scoped pytest fixtures. When the first test that
needs one runs, every server the session's tests need starts at once in the background (the
JVM and the Erlang VM mostly wait on themselves, so starting them together saves time); all of
them stop together when the session ends.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

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

    def stop(self) -> None:
        self.process.stop()

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

    def stop(self) -> None:
        self.process.stop()


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

    def stop(self) -> None:
        self.process.stop()


def start_kafka(base: Path) -> KafkaServer:
    port = free_port()
    spec = servers.kafka(base / "kafka", port, free_port())
    return KafkaServer(port=port, process=start(spec, base))


class Server(Protocol):
    def stop(self) -> None: ...


ServerT = TypeVar("ServerT", bound=Server)

STARTERS: dict[str, Callable[[Path], Server]] = {
    "postgres": start_postgres,
    "redis": start_redis,
    "rabbitmq": start_rabbitmq,
    "kafka": start_kafka,
}


class TestServers:
    """The session's servers: each starts at most once, several at a time; all stop together."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, base: Path) -> None:
        self.base = base
        self._pool = ThreadPoolExecutor(max_workers=len(STARTERS), thread_name_prefix="server")
        self._started: dict[str, Future[Server]] = {}
        self.timings: dict[str, str] = {}

    def _start(self, name: str) -> Server:
        began = time.monotonic()
        server = STARTERS[name](self.base)
        self.timings[name] = f"started in {time.monotonic() - began:.1f}s"
        return server

    def start_in_background(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self._started:
                self._started[name] = self._pool.submit(self._start, name)

    def get(self, name: str, kind: type[ServerT]) -> ServerT:
        self.start_in_background([name])
        server = self._started[name].result()
        assert isinstance(server, kind)
        return server

    def stop_all(self) -> None:
        """Stop every started server at once; raise the first failure after trying them all."""

        def stop(name: str, future: Future[Server]) -> None:
            try:
                server = future.result()
            except Exception:  # it never started, so there is nothing to stop
                return
            began = time.monotonic()
            server.stop()
            self.timings[name] += f", stopped in {time.monotonic() - began:.1f}s"

        stops = [self._pool.submit(stop, name, future) for name, future in self._started.items()]
        self._pool.shutdown(wait=True)
        for done in stops:
            done.result()
