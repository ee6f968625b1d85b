"""Every service app on the session's real Postgres, Redis, Kafka and RabbitMQ, for the fuzz.

One server per service for the whole fuzz module, with background consumers off (the fuzz
probes the HTTP surface); orders prices from the fuzz's own inventory. Callers are a real
admin of auth (bootstrapped, then logged in) and tokens signed with the shared secret for the
other services.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from devstack.ports import free_port
from devstack.testing import KafkaServer, PostgresServer, RabbitMQServer, RedisServer
from services.analytics.main import create_app as analytics_app
from services.analytics.settings import Settings as AnalyticsSettings
from services.auth.main import create_app as auth_app
from services.auth.settings import Settings as AuthSettings
from services.inventory.main import create_app as inventory_app
from services.inventory.settings import Settings as InventorySettings
from services.kit.settings import ServiceSettings
from services.notifications.main import create_app as notifications_app
from services.notifications.settings import Settings as NotificationsSettings
from services.orders.main import create_app as orders_app
from services.orders.settings import Settings as OrdersSettings
from tests.fuzz.support import served
from tests.integration.fixtures import rabbitmq_vhost
from tests.signing import token_env
from tests.support import bearer

ADMIN_EMAIL = "fuzz-admin@example.com"
ADMIN_PASSWORD = "fuzz admin password 0123"


class Fuzzed:
    """The running services: base URL and the headers of an admin caller, by service name."""

    def __init__(self) -> None:
        self.urls: dict[str, str] = {}
        self.headers: dict[str, dict[str, str]] = {}


def _common(postgres: PostgresServer, redis_url: str, kafka: KafkaServer, name: str) -> Any:
    return {
        **postgres.env(postgres.create_database(f"fuzz_{name}")),
        "APP_ENV": "test",
        "REDIS_URL": redis_url,
        "KAFKA_BROKER": kafka.bootstrap,
        **token_env(),
        "KAFKA_CONSUMER_GROUP": f"fuzz-{name}-{uuid.uuid4().hex[:8]}",
        "RUN_CONSUMERS": False,
        "DB_POOL_MIN": 1,
        "DB_POOL_MAX": 5,
    }


@pytest.fixture(scope="module")
def fuzzed(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    kafka_server: KafkaServer,
    rabbitmq_server: RabbitMQServer,
) -> Iterator[Fuzzed]:
    # A Redis database of its own: the cache and counters of the fuzz stay out of other suites.
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/15"
    running = Fuzzed()

    def common(name: str) -> Any:
        return _common(postgres_server, redis_url, kafka_server, name)

    with ExitStack() as stack:
        inventory = InventorySettings(**common("inventory"))
        running.urls["inventory"] = stack.enter_context(served(inventory_app(inventory)))
        orders = OrdersSettings(**common("orders"), INVENTORY_SERVICE_URL=running.urls["inventory"])
        running.urls["orders"] = stack.enter_context(served(orders_app(orders)))
        auth = AuthSettings(
            **common("auth"),
            ARGON2_TIME_COST=1,
            ARGON2_MEMORY_COST_KIB=1024,
            ARGON2_PARALLELISM=1,
            ADMIN_EMAIL=ADMIN_EMAIL,
            ADMIN_PASSWORD=ADMIN_PASSWORD,
        )
        running.urls["auth"] = stack.enter_context(served(auth_app(auth)))
        _, notifications_vhost = stack.enter_context(rabbitmq_vhost(rabbitmq_server, "fuzz"))
        notifications = NotificationsSettings(
            **common("notifications"), RABBITMQ_URL=notifications_vhost
        )
        running.urls["notifications"] = stack.enter_context(
            served(notifications_app(notifications))
        )
        analytics = AnalyticsSettings(
            **common("analytics"),
            RABBITMQ_URL=notifications_vhost,
            RABBITMQ_MANAGEMENT_URL=rabbitmq_server.management_url,
            PROMETHEUS_URL=f"http://127.0.0.1:{free_port()}",
            PROMETHEUS_TIMEOUT_SECONDS=1,
        )
        running.urls["analytics"] = stack.enter_context(served(analytics_app(analytics)))

        signed = bearer(ServiceSettings(**token_env()), "ADMIN").headers
        for name in ("inventory", "orders", "notifications", "analytics"):
            running.headers[name] = signed
        login = httpx.post(
            f"{running.urls['auth']}/auth/login",
            json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            timeout=30,
        )
        login.raise_for_status()
        running.headers["auth"] = {"Authorization": f"Bearer {login.json()['accessToken']}"}
        yield running
