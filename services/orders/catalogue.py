"""The inventory service's catalogue, read over HTTP to price an order, with a copy in memory.

One pooled `aiohttp.ClientSession` lives for the app's lifetime (httpx's pool costs several
times more CPU per request under concurrency, on the hot path of every create). A batch lookup
(`GET /inventory/products?ids=a,b,c`) returns every listed product that exists, active or not;
unknown ids are absent. When inventory cannot be reached or answers with a server error, no
order can be priced, so the create is refused with 503 rather than guessed.

The products looked up are kept in memory (`Catalogue`), so an order of known products is priced
without a request to inventory; inventory's catalogue signal keeps the copy current
(services/kit/changes.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
import orjson

from services.kit.changes import FollowedCopy
from services.kit.metrics import labelled
from services.orders.domain import CatalogueProduct
from services.orders.errors import InventoryUnavailable
from services.orders.metrics import CATALOGUE_LOOKUPS
from services.orders.settings import Settings

log = logging.getLogger(__name__)
MAX_IDS_PER_LOOKUP = 100
MAX_KEPT = 10_000


def create_http_client(settings: Settings) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        base_url=settings.inventory_base_url,
        timeout=aiohttp.ClientTimeout(total=settings.inventory_timeout_seconds),
        connector=aiohttp.TCPConnector(
            limit=settings.inventory_max_connections,
            # Below uvicorn's 5 s keep-alive, so we drop an idle connection before inventory does.
            keepalive_timeout=4.0,
        ),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


class Catalogue(FollowedCopy):
    """Batch lookups of the catalogue, answered from a copy in memory when it is current.

    The copy holds the products looked up before (unknown ids never, so a new product can be
    ordered at once) and follows inventory's `CATALOGUE_CHANGES`: the
    `catalogue-changes` job drops it whenever a product is created or edited, and it answers
    only while the job has confirmed the generation within 2 x CATALOGUE_CHECK_SECONDS;
    otherwise (Redis unreachable, the job restarting) every lookup asks inventory. **Staleness
    bound**: a price, name or active flag changed in inventory reaches an order's pricing
    within the pub/sub delay, and at most 2 x CATALOGUE_CHECK_SECONDS (1 s by default) after
    inventory marked it. Inventory still decides each reservation against its own state, so a
    product deactivated meanwhile is refused there. A lookup in flight when a change arrives
    is not kept. At most MAX_KEPT products are kept; past that the copy starts again empty.
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        check_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(check_seconds, clock)
        self.http = http
        self._kept: dict[str, CatalogueProduct] = {}

    def drop(self) -> None:
        self._kept.clear()

    # --- what pricing asks

    async def products(self, ids: Collection[str]) -> dict[str, CatalogueProduct]:
        """The catalogue entries of `ids` that exist, by id."""
        if len(ids) > MAX_IDS_PER_LOOKUP:
            raise ValueError(f"at most {MAX_IDS_PER_LOOKUP} ids per lookup")
        found: dict[str, CatalogueProduct] = {}
        if self.confirmed:
            found = {i: self._kept[i] for i in ids if i in self._kept}
        missing = [product_id for product_id in ids if product_id not in found]
        if not missing:
            labelled(CATALOGUE_LOOKUPS, "memory").inc()
            return found
        CATALOGUE_LOOKUPS.labels("inventory").inc()
        epoch = self.epoch
        fetched = await self._fetch(missing)
        if epoch == self.epoch:
            if len(self._kept) + len(fetched) > MAX_KEPT:
                self._kept.clear()
            self._kept.update(fetched)
        found.update(fetched)
        return found

    async def _fetch(self, ids: list[str]) -> dict[str, CatalogueProduct]:
        try:
            async with self.http.get(
                "/inventory/products", params={"ids": ",".join(ids)}
            ) as response:
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("inventory unreachable", extra={"error": repr(exc)})
            raise InventoryUnavailable() from exc
        if status != 200:
            log.warning(
                "inventory refused a catalogue lookup", extra={"status": status, "body": text[:300]}
            )
            raise InventoryUnavailable()
        try:
            found = [_product(item) for item in orjson.loads(text)["items"]]
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            log.error("inventory sent an unexpected catalogue body", extra={"error": repr(exc)})
            raise InventoryUnavailable() from exc
        wanted = set(ids)
        return {product.id: product for product in found if product.id in wanted}


def _product(item: dict[str, Any]) -> CatalogueProduct:
    return CatalogueProduct(
        id=str(item["id"]),
        sku=str(item["sku"]),
        name=str(item["name"]),
        price=Decimal(str(item["price"])),
        currency=str(item["currency"]).upper(),
        active=bool(item["active"]),
    )
