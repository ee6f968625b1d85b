"""Reservation failures are counted by reason, once each per refused order, after commit."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from services.inventory.service import InventoryService
from services.kit.consumer import EventShell
from services.kit.order_events import ORDER_CREATED
from tests.integration.inventory.support import apply_event, create_product, order_created
from tests.support import Bearer

pytestmark = pytest.mark.integration


def failures(reason: str) -> float:
    value = REGISTRY.get_sample_value("inventory_reservation_failures_total", {"reason": reason})
    assert value is not None, f"no series for {reason}"
    return value


async def test_a_refused_order_counts_each_of_its_reasons_once(
    shell: EventShell[InventoryService], client: httpx.AsyncClient, admin: Bearer
) -> None:
    product = await create_product(client, admin, stock=1)
    before: dict[str, Any] = {
        reason: failures(reason)
        for reason in ("insufficient-stock", "unknown-product", "inactive-product")
    }
    unknown = str(uuid.uuid4())
    refused = order_created([(product["id"], 5), (unknown, 1), (str(uuid.uuid4()), 1)])

    assert await apply_event(shell, ORDER_CREATED, refused) == "failed"

    assert failures("insufficient-stock") == before["insufficient-stock"] + 1
    assert failures("unknown-product") == before["unknown-product"] + 1
    assert failures("inactive-product") == before["inactive-product"]


async def test_a_reserved_order_counts_no_failure(
    shell: EventShell[InventoryService], client: httpx.AsyncClient, admin: Bearer
) -> None:
    product = await create_product(client, admin, stock=3)
    before = failures("insufficient-stock")

    assert await apply_event(shell, ORDER_CREATED, order_created([(product["id"], 3)])) == (
        "confirmed"
    )

    assert failures("insufficient-stock") == before
    processed = REGISTRY.get_sample_value(
        "events_processing_seconds_count", {"service": "inventory", "topic": ORDER_CREATED}
    )
    assert processed is not None
    assert processed >= 1
