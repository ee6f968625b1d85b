"""The inventory service's catalogue, read over HTTP to price an order.

One pooled `aiohttp.ClientSession` lives for the app's lifetime (httpx's pool costs several
times more CPU per request under concurrency, on the hot path of every create). A batch lookup
(`GET /inventory/products?ids=a,b,c`) returns every listed product that exists, active or not;
unknown ids are absent. When inventory cannot be reached or answers with a server error, no
order can be priced, so the create is refused with 503 rather than guessed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
import orjson

from services.orders.domain import CatalogueProduct
from services.orders.errors import InventoryUnavailable
from services.orders.settings import Settings

log = logging.getLogger(__name__)
MAX_IDS_PER_LOOKUP = 100


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


class Catalogue:
    """Batch lookups of the catalogue, optionally remembered for `cache_seconds`.

    With a cache (CATALOGUE_CACHE_SECONDS > 0) a product's price may be that many seconds old
    when an order is priced; inventory still decides the reservation against its own current
    state, so a product deactivated meanwhile is refused there. Unknown products are never
    remembered, so a new product can be ordered at once.
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        cache_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: dict[str, tuple[float, CatalogueProduct]] = {}

    async def products(self, ids: Collection[str]) -> dict[str, CatalogueProduct]:
        """The catalogue entries of `ids` that exist, by id."""
        if len(ids) > MAX_IDS_PER_LOOKUP:
            raise ValueError(f"at most {MAX_IDS_PER_LOOKUP} ids per lookup")
        found: dict[str, CatalogueProduct] = {}
        now = self.clock()
        for product_id in ids:
            cached = self._cache.get(product_id)
            if cached is not None and now - cached[0] < self.cache_seconds:
                found[product_id] = cached[1]
        missing = [product_id for product_id in ids if product_id not in found]
        if missing:
            fetched = await self._fetch(missing)
            if self.cache_seconds > 0:
                self._cache.update((p.id, (now, p)) for p in fetched.values())
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
