"""Each placed order's first CONFIRMED or FAILED push, whichever of its create's answer and the
push comes in first.

The answer and the pushes travel apart (the create's answer through the gateway, the pushes
over each customer's Socket.IO connection after the pipeline's round), and near saturation the
answer can be the slower: a push for an order no answer has named yet is kept, with the time it
came, until one does. Without that the generator waited its whole settling time for orders
whose push it had already received and reported them unsettled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

SETTLING = frozenset({"CONFIRMED", "FAILED"})

Order = TypeVar("Order")
Settle = Callable[[Order, str, float, float], None]
"""Called once per order: (the order, its status, `time.perf_counter()` and `time.time()` when
its push came in)."""


class Settlements(Generic[Order]):
    def __init__(self, settle: Settle[Order]) -> None:
        self._settle = settle
        self._placed: dict[str, Order] = {}
        self._settled: set[str] = set()
        self._early: dict[str, tuple[str, float, float]] = {}

    def placed(self, order_id: str, order: Order) -> None:
        """The create's answer named `order_id`: settles it now if its push came first."""
        self._placed[order_id] = order
        pushed = self._early.pop(order_id, None)
        if pushed is not None:
            self._settled.add(order_id)
            self._settle(order, *pushed)

    def on_update(self, data: dict[str, Any]) -> None:
        """An `order.updated` push (the live client's handler)."""
        order_id, status = data.get("orderId"), data.get("status")
        if not isinstance(order_id, str) or status not in SETTLING or order_id in self._settled:
            return
        order = self._placed.get(order_id)
        if order is None:
            self._early.setdefault(order_id, (status, time.perf_counter(), time.time()))
            return
        self._settled.add(order_id)
        self._settle(order, status, time.perf_counter(), time.time())
