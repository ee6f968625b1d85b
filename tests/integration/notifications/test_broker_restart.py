"""RabbitMQ killed and restarted in the middle of a stream of notifications loses nothing and
sends nothing twice.

This module has a RabbitMQ of its own (the session's is shared): the notifications app and its
workers run against it, order events keep coming while the broker is killed (SIGKILL) and
started again on the same data, and afterwards every delivery is sent, once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg.rows import DictRow

from devstack.process import ManagedProcess
from devstack.testing import RabbitMQServer, TestServers, start_rabbitmq
from services.kit.consumer import EventShell
from services.notifications.domain import Channel
from services.notifications.settings import Settings
from tests.integration.notifications.providers import ProviderDouble
from tests.integration.notifications.support import FAST_RETRIES, confirmed, set_preferences
from tests.support import Bearer, eventually

pytestmark = pytest.mark.integration

ORDERS = 40


@pytest.fixture(scope="module")
def private_rabbitmq(test_servers: TestServers) -> Iterator[RabbitMQServer]:
    base = test_servers.base / f"rabbitmq-restart-{uuid.uuid4().hex[:6]}"
    base.mkdir()
    server = start_rabbitmq(base)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def vhost_url(private_rabbitmq: RabbitMQServer) -> str:
    return private_rabbitmq.amqp_url


@pytest.fixture(scope="module")
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update=FAST_RETRIES)


def _kill_and_restart(server: RabbitMQServer) -> None:
    process = server.process
    assert process.pid is not None
    os.killpg(process.pid, signal.SIGKILL)
    process.stop()  # reaps it and waits for its ports to close
    server.process = ManagedProcess(process.spec, Path(process.log_path)).start()


async def test_rabbitmq_killed_mid_stream_loses_and_duplicates_nothing(
    private_rabbitmq: RabbitMQServer,
    workers: dict[Channel, FastAPI],
    client: httpx.AsyncClient,
    shell: EventShell[Any],
    provider: ProviderDouble,
    db: psycopg.Connection[DictRow],
    user: Bearer,
) -> None:
    body = {
        "channels": {"order.confirmed": {"email": False, "sms": True, "push": True}},
        "phone": "+4930123456",
    }
    await set_preferences(client, user, body)
    orders = [str(uuid.uuid4()) for _ in range(ORDERS)]

    async def produce(batch: list[str]) -> None:
        for order_id in batch:
            topic, envelope = confirmed(order_id, user.id)
            await shell.handle(topic, envelope.to_bytes())
            await asyncio.sleep(0.02)

    await produce(orders[: ORDERS // 2])
    restart = asyncio.create_task(asyncio.to_thread(_kill_and_restart, private_rabbitmq))
    await produce(orders[ORDERS // 2 :])  # written while the broker is down or coming back
    await restart

    async def all_sent() -> bool:
        row = db.execute(
            """
            SELECT count(*) FILTER (WHERE d.status = 'sent') AS sent, count(*) AS total
            FROM deliveries d JOIN notifications n ON n.id = d.notification_id
            WHERE n.order_id = ANY(%s)
            """,
            (orders,),
        ).fetchone()
        assert row is not None
        return bool(row["sent"] == row["total"] == 2 * ORDERS)

    await eventually(all_sent, within=120, what="every delivery sent after the restart")
    for order_id in orders:
        assert len(provider.accepted_for(order_id, "/push")) == 1
        assert len(provider.accepted_for(order_id[:8], "/sms")) == 1
    sent_twice = db.execute(
        """
        SELECT a.delivery_id FROM delivery_attempts a
        JOIN deliveries d ON d.id = a.delivery_id JOIN notifications n ON n.id = d.notification_id
        WHERE n.order_id = ANY(%s) AND a.outcome = 'sent'
        GROUP BY a.delivery_id HAVING count(*) > 1
        """,
        (orders,),
    ).fetchall()
    assert sent_twice == []
