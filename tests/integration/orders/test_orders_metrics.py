"""The orders service's business metrics move with the orders: value at creation, status
changes and the create-to-confirmed latency once inventory's confirmation is applied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from services.kit.consumer import EventShell
from services.kit.order_events import ORDER_CONFIRMED, OrderConfirmed
from services.kit.outbox import event
from tests.integration.orders.support import ADDRESS, CatalogueStub
from tests.support import Bearer

pytestmark = pytest.mark.integration


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def test_creating_and_confirming_an_order_moves_its_metrics(
    orders_app: FastAPI, client: httpx.AsyncClient, catalogue: CatalogueStub, user: Bearer
) -> None:
    pen = catalogue.add("Metered pen", "2.50", currency="CHF")
    value_count = sample("orders_created_value_count", {"currency": "CHF"})
    value_sum = sample("orders_created_value_sum", {"currency": "CHF"})
    confirmed_before = sample(
        "orders_transitions_total", {"status": "CONFIRMED", "actor": "inventory"}
    )
    latency_before = sample("orders_create_to_confirmed_seconds_count")

    response = await client.post(
        "/orders",
        json={"items": [{"productId": pen, "quantity": 3}], "shippingAddress": ADDRESS},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()

    assert sample("orders_created_value_count", {"currency": "CHF"}) == value_count + 1
    assert sample("orders_created_value_sum", {"currency": "CHF"}) == value_sum + 7.5

    shell: EventShell[Any] = orders_app.state.event_shell
    data = OrderConfirmed(
        order_id=order["id"],
        user_id=order["userId"],
        version=1,
        reservation_expires_at=datetime.now(UTC) + timedelta(minutes=15),
    )
    envelope = event("/services/inventory", ORDER_CONFIRMED, order["id"], data)
    applied = await shell.handle(ORDER_CONFIRMED, envelope.to_bytes())
    assert applied is not None
    assert applied.outcome == "CONFIRMED"
    await shell.after_commit.drained()

    assert (
        sample("orders_transitions_total", {"status": "CONFIRMED", "actor": "inventory"})
        == confirmed_before + 1
    )
    assert sample("orders_create_to_confirmed_seconds_count") == latency_before + 1
    assert (
        sample("events_processing_seconds_count", {"service": "orders", "topic": ORDER_CONFIRMED})
        >= 1
    )


def test_every_legal_status_change_has_a_series_from_the_start() -> None:
    for status, actor in [
        ("CONFIRMED", "inventory"),
        ("FAILED", "inventory"),
        ("CANCELLED", "owner"),
        ("CANCELLED", "admin"),
        ("CANCELLED", "inventory"),
    ]:
        labels = {"status": status, "actor": actor}
        assert REGISTRY.get_sample_value("orders_transitions_total", labels) is not None
