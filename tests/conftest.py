"""Session-wide throwaway backing servers, started the first time a test asks for one.

Each server runs on free ports under one temporary folder and is stopped (and its ports checked
closed) when the session ends, so the suite runs beside a `make up` stack without touching it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import testing


@pytest.fixture(scope="session")
def devstack_dir() -> Iterator[Path]:
    """The folder holding every test server's data and logs (kept with KEEP_TEST_SERVERS_DIR)."""
    base = Path(tempfile.mkdtemp(prefix="realtimeorder-tests-"))
    # PostgreSQL runs as an unprivileged user that must be able to reach its data folder.
    base.chmod(0o711)
    yield base
    if not os.environ.get("KEEP_TEST_SERVERS_DIR"):
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(devstack_dir: Path) -> Iterator[testing.PostgresServer]:
    server = testing.start_postgres(devstack_dir)
    yield server
    server.process.stop()


@pytest.fixture(scope="session")
def redis_server(devstack_dir: Path) -> Iterator[testing.RedisServer]:
    server = testing.start_redis(devstack_dir)
    yield server
    server.process.stop()


@pytest.fixture(scope="session")
def rabbitmq_server(devstack_dir: Path) -> Iterator[testing.RabbitMQServer]:
    server = testing.start_rabbitmq(devstack_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kafka_server(devstack_dir: Path) -> Iterator[testing.KafkaServer]:
    server = testing.start_kafka(devstack_dir)
    yield server
    server.process.stop()
