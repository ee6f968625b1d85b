"""The Kafka events inventory consumes, in one table: topic -> data type -> what applies it.

The kit's consumer shell (kit/consumer.py) parses each message, claims its event id and runs
the service's method in the same transaction, together with any event the method emits
(written to the outbox); the product cache is invalidated after the commit. order.created is
the exception: the new orders of a consumed group (a lone one is a group of one) whose lines all
fit are reserved by one statement, which commits by itself for a lone event and dedupes itself
through the reservations' keys, so the shell claims nothing for them, and the service claims
an event itself on the checked path (`InventoryService.reserve_many`). A message that cannot be
parsed raises; the consumer retries it and then dead-letters it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from services.inventory.service import InventoryService
from services.kit.consumer import Applied, Consumed, Handler
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


async def _reserve_many(
    service: InventoryService, conn: DictConnection, events: Sequence[Consumed]
) -> list[Applied | None]:
    return await service.reserve_many(conn, events)


EVENT_HANDLERS: dict[str, Handler[InventoryService]] = {
    ORDER_CREATED: Handler.of_many(
        ORDER_CREATED,
        OrderCreated,
        _reserve_many,
        one_statement=True,
        groups_in_one_statement=True,
    ),
    ORDER_CANCELLED: Handler(OrderStatusChanged, _on_data(InventoryService.release)),
    ORDER_SHIPPED: Handler(OrderStatusChanged, _on_data(InventoryService.commit)),
}
