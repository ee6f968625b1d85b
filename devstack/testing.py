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
from typing import Any, Protocol, TypeVar

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


def _http_json(method: str, url: str, **kwargs: Any) -> Any:
    """One request to a test server's HTTP API; raises on an error status; None for no body."""
    import httpx

    response = httpx.request(method, url, timeout=10, **kwargs)
    response.raise_for_status()
    return response.json() if response.content else None


def _poll(
    fetch: Callable[[], list[dict[str, Any]]], count: int, timeout: float
) -> list[dict[str, Any]]:
    """`fetch()` once it returns `count` items or more; AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        found = fetch()
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} message(s) within {timeout}s, found {found!r}")
        time.sleep(0.1)


@dataclass
class MailpitServer:
    """Mailpit: SMTP on `smtp_port` (any login or none, no TLS), its REST API under `api_url`.

    The server is shared by the session: tests tell their mail apart by a recipient of their own
    (`messages(query='to:"ada-1@example.com"')`, Mailpit's search syntax).
    """

    smtp_port: int
    http_port: int
    process: ManagedProcess
    host: str = HOST

    @property
    def web_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def api_url(self) -> str:
        return f"{self.web_url}/api/v1"

    def env(self) -> dict[str, str]:
        """The variables the email worker reads, pointing at this server."""
        return {"SMTP_HOST": self.host, "SMTP_PORT": str(self.smtp_port)}

    def messages(self, query: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Summaries, newest first: ID, MessageID, From, To, Subject, Snippet, Created...

        `query` is Mailpit's search (`to:"ada@example.com" subject:"Order"`); None lists all.
        """
        if query is None:
            body = _http_json("GET", f"{self.api_url}/messages", params={"limit": limit})
        else:
            body = _http_json(
                "GET", f"{self.api_url}/search", params={"query": query, "limit": limit}
            )
        messages: list[dict[str, Any]] = body["messages"]
        return messages

    def message(self, message_id: str) -> dict[str, Any]:
        """One message: From, To, Subject, Date, Text, HTML, Attachments... ("latest" works)."""
        message: dict[str, Any] = _http_json("GET", f"{self.api_url}/message/{message_id}")
        return message

    def headers(self, message_id: str) -> dict[str, list[str]]:
        """Every header of one message, by name."""
        headers: dict[str, list[str]] = _http_json(
            "GET", f"{self.api_url}/message/{message_id}/headers"
        )
        return headers

    def wait_for_messages(
        self, query: str, count: int = 1, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """The summaries matching `query` once there are at least `count` of them."""
        return _poll(lambda: self.messages(query), count, timeout)

    def delete_all(self) -> None:
        _http_json("DELETE", f"{self.api_url}/messages")

    def stop(self) -> None:
        self.process.stop()


def start_mailpit(base: Path) -> MailpitServer:
    smtp_port, http_port = free_port(), free_port()
    spec = servers.mailpit(base / "mailpit", smtp_port, http_port)
    return MailpitServer(smtp_port=smtp_port, http_port=http_port, process=start(spec, base))


@dataclass
class ProviderSinkServer:
    """devstack/provider_sink.py: the SMS and push providers' stand-in (see its docstring)."""

    port: int
    process: ManagedProcess
    host: str = HOST

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """The variables the SMS and push workers read, pointing at this sink."""
        return {"SMS_PROVIDER_URL": f"{self.url}/sms", "PUSH_PROVIDER_URL": f"{self.url}/push"}

    def messages(
        self, channel: str | None = None, reference: str | None = None
    ) -> list[dict[str, Any]]:
        """Accepted messages, newest first: id, channel, receivedAt, idempotencyKey, request."""
        params = {
            name: value
            for name, value in (("channel", channel), ("reference", reference))
            if value is not None
        }
        messages: list[dict[str, Any]] = _http_json("GET", f"{self.url}/messages", params=params)[
            "messages"
        ]
        return messages

    def wait_for_messages(
        self, channel: str, reference: str, count: int = 1, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        return _poll(lambda: self.messages(channel, reference), count, timeout)

    def fail_next(self, channel: str, status: int, count: int = 1) -> None:
        """Make the next `count` requests to `channel` answer `status` and deliver nothing."""
        _http_json(
            "POST",
            f"{self.url}/faults",
            json={"channel": channel, "status": status, "count": count},
        )

    def reset(self) -> None:
        """Forget every message, idempotency key and pending fault."""
        _http_json("DELETE", f"{self.url}/messages")

    def stop(self) -> None:
        self.process.stop()


def start_provider_sink(base: Path) -> ProviderSinkServer:
    port = free_port()
    return ProviderSinkServer(port=port, process=start(servers.provider_sink(port), base))


class Server(Protocol):
    def stop(self) -> None: ...


ServerT = TypeVar("ServerT", bound=Server)

STARTERS: dict[str, Callable[[Path], Server]] = {
    "postgres": start_postgres,
    "redis": start_redis,
    "rabbitmq": start_rabbitmq,
    "kafka": start_kafka,
    "mailpit": start_mailpit,
    "provider_sink": start_provider_sink,
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
