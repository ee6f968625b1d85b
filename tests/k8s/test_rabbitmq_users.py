"""The chart's RabbitMQ users (topology mode) hold what their component needs on a real broker.

The messaging topology operator turns each rendered `User` and `Permission` into a broker user
with those tags and rights; here the test does that itself on the session's RabbitMQ, then acts
as the user the way its component does.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from devstack.testing import RabbitMQServer
from realtimeorder_operator.builders import QueueSpec, build_queue_topology
from realtimeorder_operator.rabbitmq_admin import RabbitManagement, RabbitRequestRejected
from tests.k8s.test_chart import CHART, RELEASE, by_kind, helm_template


def rendered_user(helm: Path, component: str) -> tuple[list[str], dict[str, str], str]:
    """Tags, permissions and vhost of a component's User and Permission in the operators
    profile (RabbitMQ topology mode)."""
    docs = helm_template(helm, [CHART / "ci" / "operators-values.yaml"], "rabbitmq-users")
    name = f"{RELEASE}-rabbitmq-{component}"
    (user,) = [u for u in by_kind(docs, "User") if u["metadata"]["name"] == name]
    (permission,) = [
        p for p in by_kind(docs, "Permission") if p["spec"]["userReference"]["name"] == name
    ]
    return user["spec"]["tags"], permission["spec"]["permissions"], permission["spec"]["vhost"]


def create_user(
    broker: RabbitMQServer, name: str, password: str, tags: list[str], rights: dict[str, Any]
) -> None:
    """What the topology operator does for a User and its Permission."""
    admin = (broker.user, broker.password)
    base = broker.management_url
    response = httpx.put(
        f"{base}/api/users/{quote(name, safe='')}",
        json={"password": password, "tags": ",".join(tags)},
        auth=admin,
        timeout=10,
    )
    response.raise_for_status()
    response = httpx.put(
        f"{base}/api/permissions/{quote(rights['vhost'], safe='')}/{quote(name, safe='')}",
        json={k: rights[k] for k in ("configure", "write", "read")},
        auth=admin,
        timeout=10,
    )
    response.raise_for_status()


@pytest.mark.k8s
@pytest.mark.integration
async def test_the_operator_user_reads_queue_figures_and_changes_nothing(
    helm: Path, rabbitmq_server: RabbitMQServer
) -> None:
    """In topology mode the operator only reads queue counts (NotificationQueue status,
    queueDepth WorkerAutoscalers): its user can, and can neither declare nor delete a queue."""
    tags, permissions, vhost = rendered_user(helm, "operator")
    assert (tags, vhost) == (["monitoring"], "/")
    name = f"operator-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    create_user(rabbitmq_server, name, password, tags, {**permissions, "vhost": vhost})

    spec = QueueSpec.from_resource(
        {"queueName": f"users-{name}.notifications", "type": "classic"}, "users"
    )
    work = build_queue_topology(spec)[0]
    url = rabbitmq_server.management_url
    async with RabbitManagement(url, rabbitmq_server.user, rabbitmq_server.password) as admin:
        await admin.declare_queue("/", work)
    try:
        async with RabbitManagement(url, name, password) as operator:
            counts = await operator.queue_counts("/", work.name)
            assert counts is not None
            assert counts.messages == 0
            with pytest.raises(RabbitRequestRejected, match=r" 40[13] "):
                await operator.declare_queue("/", build_queue_topology(spec)[-1])
            with pytest.raises(RabbitRequestRejected, match=r" 40[13] "):
                await operator.delete_queue("/", work.name)
    finally:
        async with RabbitManagement(url, rabbitmq_server.user, rabbitmq_server.password) as admin:
            await admin.delete_queue("/", work.name)
