"""The Kafka events inventory consumes, in one table: topic -> data type -> what applies it.

The kit's consumer shell (kit/consumer.py) parses each message, claims its event id and runs
the service's method in the same transaction, together with any event the method emits
(written to the outbox); the product cache is invalidated after the commit. order.created is
the exception: an order whose lines all fit is reserved by one statement that commits by itself
and dedupes itself through the reservation's key, so the shell claims nothing for it, and the
service claims the event itself on the checked path (`InventoryService.reserve`). A message that
cannot be parsed raises; the consumer retries it and then dead-letters it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.inventory.service import InventoryService
from services.kit.consumer import Applied, Handler
from services.kit.db import DictConnection
from services.kit.events import Envelope
from services.kit.order_events import (
    ORDER_CANCELLED,
    ORDER_CREATED,
    ORDER_SHIPPED,
    OrderCreated,
    OrderStatusChanged,
)

ServiceMethod = Callable[[InventoryService, DictConnection, Any], Awaitable[Applied]]


def _on_data(method: ServiceMethod) -> Callable[..., Awaitable[Applied]]:
    """Apply an event by handing its data to a service method."""

    async def apply(
        service: InventoryService, conn: DictConnection, event: Envelope[Any]
    ) -> Applied:
        return await method(service, conn, event.data)

    return apply


async def _reserve(
    service: InventoryService, conn: DictConnection, event: Envelope[OrderCreated]
) -> Applied | None:
    return await service.reserve(conn, event.id, event.data)


EVENT_HANDLERS: dict[str, Handler[InventoryService]] = {
    ORDER_CREATED: Handler(OrderCreated, _reserve, dedupes_itself=True, one_statement=True),
    ORDER_CANCELLED: Handler(OrderStatusChanged, _on_data(InventoryService.release)),
    ORDER_SHIPPED: Handler(OrderStatusChanged, _on_data(InventoryService.commit)),
}
