"""Session-wide throwaway backing servers, started when the first test asks for one.

Each server runs on free ports under one temporary folder and is stopped (and its ports checked
closed) when the session ends, so the suite runs beside a `make up` stack without touching it.
When the first server is needed, every server some collected test needs starts in the
background at the same time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import testing

SERVER_FIXTURES = {f"{name}_server": name for name in testing.STARTERS}
TIMINGS = pytest.StashKey[dict[str, str]]()


@pytest.fixture(scope="session")
def test_servers(request: pytest.FixtureRequest) -> Iterator[testing.TestServers]:
    """The session's servers (data and logs kept with KEEP_TEST_SERVERS_DIR=1)."""
    base = Path(tempfile.mkdtemp(prefix="realtimeorder-tests-"))
    # PostgreSQL runs as an unprivileged user that must be able to reach its data folder.
    base.chmod(0o711)
    pool = testing.TestServers(base)
    needed = {
        SERVER_FIXTURES[name]
        for item in request.session.items
        for name in getattr(item, "fixturenames", ())
        if name in SERVER_FIXTURES
    }
    pool.start_in_background(sorted(needed, key=list(testing.STARTERS).index))
    try:
        yield pool
    finally:
        try:
            pool.stop_all()
        finally:
            request.config.stash[TIMINGS] = pool.timings
            if os.environ.get("KEEP_TEST_SERVERS_DIR"):
                print(f"\ntest servers' data and logs kept in {base}")
            else:
                shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(test_servers: testing.TestServers) -> testing.PostgresServer:
    return test_servers.get("postgres", testing.PostgresServer)


@pytest.fixture(scope="session")
def redis_server(test_servers: testing.TestServers) -> testing.RedisServer:
    return test_servers.get("redis", testing.RedisServer)


@pytest.fixture(scope="session")
def rabbitmq_server(test_servers: testing.TestServers) -> testing.RabbitMQServer:
    return test_servers.get("rabbitmq", testing.RabbitMQServer)


@pytest.fixture(scope="session")
def kafka_server(test_servers: testing.TestServers) -> testing.KafkaServer:
    return test_servers.get("kafka", testing.KafkaServer)


@pytest.fixture(scope="session")
def mailpit_server(test_servers: testing.TestServers) -> testing.MailpitServer:
    return test_servers.get("mailpit", testing.MailpitServer)


@pytest.fixture(scope="session")
def provider_sink_server(test_servers: testing.TestServers) -> testing.ProviderSinkServer:
    return test_servers.get("provider_sink", testing.ProviderSinkServer)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    timings = config.stash.get(TIMINGS, {})
    if timings:
        terminalreporter.write_sep("-", "test servers")
        for name, timing in timings.items():
            terminalreporter.write_line(f"{name}: {timing}")
