"""The product list cache in Redis, invalidated as a whole by one INCR.

The INCR also announces the change to the gateway, which serves the public list from memory
(services/kit/cache.py has the signal, services/gateway/products.py the copy).

Every cached page is stored as `<generation>:<json>` under a key derived from the normalised
query. Every product or stock change increments the generation counter after its transaction
commits; a read fetches the counter and the page in one MGET and uses the page only if it was
built in the current generation. A page built from a read that raced with a change carries the
generation read *before* the query, so it is never served after that change's INCR.

Redis being down never fails a read: the list is then served from Postgres.

Paced for the order flow. A change an admin makes (a product, a stock level) marks the list
stale at once (`invalidate`). A stock change of the order flow (a reservation, a release, a
shipment's commit, an expiry) comes with every order, and marking each would drop the cached
pages (and the gateway's copy) as fast as orders arrive, so that a list read under load is
rebuilt from Postgres every time; `stock_changed` marks at once when the last mark is older
than `stock_mark_seconds` (PRODUCT_STOCK_MARK_SECONDS, 0.25 s by default), and otherwise once
at the end of that interval for every change committed meanwhile. Availability in the list
therefore trails the order flow by at most that interval (0 marks every change); `close`
marks a change still waiting before the service stops.

Bounded. Anonymous callers choose the query, so unique parameters (`q=a1`, `q=a2`, ...) could
fill Redis, which also holds auth's login and registration counters and the token revocation
markers. Keys come from the normalised query (`ProductQuery.canonical`: collapsed, lowercased
text, normalised decimals, sorted ids; price filters have at most two decimals), and at most
PRODUCT_CACHE_MAX_PAGES pages are stored per TTL window (a counter per window, expiring with
it): every page expires within its TTL, so at most twice that many exist at any time. A query
past the cap is still answered, from Postgres, and counted as `skipped`. With the cache bounded
the shared Redis never needs to evict: run it with `maxmemory-policy noeviction` (SECURITY.md),
so a full Redis fails writes loudly instead of silently evicting a limiter counter.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.inventory.domain import ProductQuery
from services.inventory.metrics import PRODUCT_CACHE
from services.kit.changes import CATALOGUE_CHANGES, PRODUCT_CHANGES, mark

_PAGE_PREFIX = "inventory:products:list:"
_STORED_PREFIX = "inventory:products:stored:"
DEFAULT_MAX_PAGES = 2000

log = logging.getLogger(__name__)


def cache_key(query: ProductQuery) -> str:
    """The Redis key of a query's page: equal normalised queries share it."""
    canonical = orjson.dumps(query.canonical(), option=orjson.OPT_SORT_KEYS)
    return _PAGE_PREFIX + hashlib.sha256(canonical).hexdigest()[:40]


class ProductListCache:
    def __init__(
        self,
        redis: Redis,
        ttl_seconds: int,
        max_pages: int = DEFAULT_MAX_PAGES,
        *,
        stock_mark_seconds: float = 0.0,
    ) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.max_pages = max_pages
        self.stock_mark_seconds = stock_mark_seconds
        self._last_mark = -stock_mark_seconds
        self._due: asyncio.TimerHandle | None = None
        self._marking: set[asyncio.Task[None]] = set()

    async def get_or_build(self, query: ProductQuery, build: Callable[[], Awaitable[str]]) -> str:
        """The page of `query` as JSON: cached if current, else built and stored."""
        key = cache_key(query)
        generation = "0"
        try:
            current, page = await self.redis.mget(PRODUCT_CHANGES.key, key)
            generation = str(current or "0")
            if page is not None:
                page_generation, _, body = str(page).partition(":")
                if page_generation == generation:
                    PRODUCT_CACHE.labels("hit").inc()
                    return str(body)
        except RedisError:
            log.warning("product cache unavailable; reading from the database", exc_info=True)
            PRODUCT_CACHE.labels("miss").inc()
            return await build()
        PRODUCT_CACHE.labels("miss").inc()
        body = await build()
        try:
            if await self._may_store():
                await self.redis.set(key, f"{generation}:{body}", ex=self.ttl_seconds)
            else:
                PRODUCT_CACHE.labels("skipped").inc()
        except RedisError:
            log.warning("could not store a product page in the cache", exc_info=True)
        return body

    async def _may_store(self) -> bool:
        """Whether this TTL window has room for one more page (counting this one)."""
        window = int(time.time() // self.ttl_seconds)
        counter = f"{_STORED_PREFIX}{window}"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(counter)
            pipe.expire(counter, 2 * self.ttl_seconds, nx=True)
            stored, _ = await pipe.execute()
        return int(stored) <= self.max_pages

    async def invalidate(self, *, catalogue: bool = False) -> None:
        """Make every cached page stale, here and in the gateway's copy, and with `catalogue`
        (a product created or edited, not only its stock) orders' copy of the prices too
        (services/kit/changes.py); call after the change's transaction has committed."""
        signals = (PRODUCT_CHANGES, CATALOGUE_CHANGES) if catalogue else (PRODUCT_CHANGES,)
        self._last_mark = time.monotonic()
        try:
            await mark(self.redis, *signals)
        except RedisError:
            # The change is committed; cached pages stay stale until their TTL runs out, and
            # orders' copy of the prices until it next confirms the generation.
            log.error("could not invalidate the product cache", exc_info=True)

    async def stock_changed(self) -> None:
        """Make every cached page stale after a stock change of the order flow, paced: at once
        if the last mark is `stock_mark_seconds` old, else when it is that old, once for every
        change committed until then; call after the change's transaction has committed."""
        if self._due is not None:
            return  # a mark is due and comes after this change's commit
        wait = self._last_mark + self.stock_mark_seconds - time.monotonic()
        if wait <= 0:
            await self.invalidate()
            return
        self._due = asyncio.get_running_loop().call_later(wait, self._mark_due)

    def _mark_due(self) -> None:
        self._due = None
        # Dated now, not when the task starts: a change that arrives meanwhile waits.
        self._last_mark = time.monotonic()
        task = asyncio.create_task(self.invalidate())
        self._marking.add(task)
        task.add_done_callback(self._marking.discard)

    async def close(self) -> None:
        """Mark a stock change still waiting for its interval, and wait for marks under way."""
        if self._due is not None:
            self._due.cancel()
            self._due = None
            await self.invalidate()
        if self._marking:
            await asyncio.gather(*self._marking)
