"""The product list from memory: `GET /inventory/products` answered by the gateway itself.

The list is the platform's hottest read and every client asks the same few queries, so the
gateway keeps the last answer to each (per view: public or admin, and the raw query string)
and answers from it without a hop to inventory. Measured on two cores, the proxied list cost
about 0.9 ms of gateway CPU and 0.4 ms in inventory per request (docs/benchmarks.md); from here
it costs only the gateway's own request handling, and an anonymous hit not even most of that
(services/gateway/product_hits.py).

Invalidation. Inventory marks every product or stock change after its commit by incrementing a
generation counter in Redis and publishing it (`PRODUCT_CHANGES`, services/kit/changes.py). The
`product-changes` job, a `ChangeWatch`, hears the channel, and reads the counter every
PRODUCT_CACHE_CHECK_SECONDS for a message pub/sub lost; any new value drops every entry. A write
to inventory that this gateway forwarded and that succeeded drops them too, so a client reads
its own change through the same replica even before the message arrives. An answer fetched
while a change arrived is not kept.

Staleness bound. A change is served from here at most 2 x PRODUCT_CACHE_CHECK_SECONDS after
inventory marked it (1 s by default), and in practice after the pub/sub delay (milliseconds):
the job confirms the counter at least every check interval, and the cache answers only while
its last confirmation is younger than twice that; with Redis unreachable it stops answering
and every request is forwarded, and a job that starts again (after Redis came back) drops every
entry, since it cannot know what it missed.

Revalidation. Inventory tags each page with a weak ETag (a hash of its JSON; weak because the
gzip and the identity encoding are the same representation) and `Cache-Control: no-cache`, so
browsers keep the page and revalidate each time, and a matching `If-None-Match` is answered
304 without a body, from here. A client that accepts gzip gets the entry compressed once when
it was stored (a page of 20 products on the local stack: 6.5 kB of JSON, 1.5 kB gzipped). The
miss's own request goes upstream without `If-None-Match`, so it brings the whole page back.

Only answers the service tagged are kept: a 200 with an ETag, without Set-Cookie, a
Content-Encoding of its own or `Cache-Control: private`/`no-store`, up to MAX_BODY_BYTES; at
most PRODUCT_CACHE_MAX_ENTRIES of them (the oldest goes first: anyone can invent queries).
Concurrent misses of a key that was kept before share one upstream request.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.datastructures import State

from services.gateway.headers import Headers
from services.gateway.metrics import PRODUCT_CACHE, PRODUCT_CACHE_NOT_MODIFIED
from services.gateway.service import UpstreamAnswer
from services.kit.cache import etag_matches
from services.kit.changes import FollowedCopy
from services.kit.errors import DomainError
from services.kit.security import authenticate

LIST_PATH = "/inventory/products"
UPSTREAM = "inventory"
LIST_ROUTE = f"/{UPSTREAM}/{{path:path}}"
"""The template of the proxy route that serves the list, as the request metrics record it."""
PUBLIC_VIEW, ADMIN_VIEW = "public", "admin"
"""The views the copy keeps answers for: what anonymous callers and customers see, and admins."""
MAX_BODY_BYTES = 256 * 1024
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_HIT, _MISS, _COALESCED, _BYPASS = (
    PRODUCT_CACHE.labels(result) for result in ("hit", "miss", "coalesced", "bypass")
)
_REFUSED_DIRECTIVES = ("no-store", "private")
_VARY = (b"vary", b"Accept-Encoding, Authorization")

Key = tuple[str, bytes]
Fetch = Callable[[], Awaitable[UpstreamAnswer]]


@dataclass(frozen=True, slots=True)
class Entry:
    headers: list[tuple[bytes, bytes]]
    body: bytes
    gzipped: bytes
    etag: str

    @classmethod
    def of(cls, answer: UpstreamAnswer, etag: str) -> Entry:
        return cls(
            headers=[(name, value) for name, value in answer.headers if name != b"vary"],
            body=answer.body,
            gzipped=gzip.compress(answer.body, compresslevel=6, mtime=0),
            etag=etag,
        )

    def answer(self, *, if_none_match: bytes | None, accepts_gzip: bool) -> UpstreamAnswer:
        """This entry as an answer to a request with these headers: 304, gzip or identity."""
        headers = [*self.headers, _VARY]
        if if_none_match is not None and etag_matches(if_none_match.decode("latin-1"), self.etag):
            PRODUCT_CACHE_NOT_MODIFIED.inc()
            return UpstreamAnswer(304, headers, b"", None)
        if accepts_gzip:
            headers.append((b"content-encoding", b"gzip"))
            return UpstreamAnswer(200, headers, self.gzipped, None)
        return UpstreamAnswer(200, headers, self.body, None)


def without_validators(headers: Headers) -> Headers:
    """Request headers for a miss's fetch: without `If-None-Match`, so the page comes back."""
    return [(name, value) for name, value in headers if name != "if-none-match"]


def keepable_etag(answer: UpstreamAnswer) -> str | None:
    """The ETag of an answer the gateway may keep, or None: a 200 whose service tagged it,
    without a cookie, an encoding of its own or a directive against shared caches."""
    if answer.status != 200 or len(answer.body) > MAX_BODY_BYTES:
        return None
    etag = None
    for name, value in answer.headers:
        if name in (b"set-cookie", b"content-encoding"):
            return None
        if name == b"cache-control" and any(
            directive in value.decode("latin-1").lower() for directive in _REFUSED_DIRECTIVES
        ):
            return None
        if name == b"etag":
            etag = value.decode("latin-1")
    return etag


def accepts_gzip(accept_encoding: bytes | None) -> bool:
    """Whether an Accept-Encoding value names gzip (and not with `q=0`)."""
    if accept_encoding is None or b"gzip" not in accept_encoding.lower():
        return False
    for coding in accept_encoding.lower().split(b","):
        name, _, params = coding.partition(b";")
        if name.strip() == b"gzip":
            quality = params.replace(b" ", b"").removeprefix(b"q=")
            return not params or quality.strip(b"0.") != b""
    return False


class ProductListCache(FollowedCopy):
    """The entries, the change epoch they belong to (kit/changes.py: `FollowedCopy`, kept
    current by the `product-changes` job)."""

    def __init__(self, max_entries: int, check_seconds: float) -> None:
        super().__init__(check_seconds)
        self.max_entries = max_entries
        self._entries: dict[Key, Entry] = {}
        self._kept_before: dict[Key, None] = {}
        self._loading: dict[Key, asyncio.Future[UpstreamAnswer | Entry]] = {}

    def drop(self) -> None:
        """No entry or running fetch is current any more."""
        self._entries.clear()
        self._loading.clear()

    # --- what the proxy asks

    @staticmethod
    def serves(method: str, path: str) -> bool:
        return method == "GET" and path == LIST_PATH

    def after_forwarded(self, upstream: str, method: str, status: int) -> None:
        """A write this gateway forwarded to inventory succeeded: its change is visible next."""
        if upstream == UPSTREAM and method in _WRITES and 200 <= status < 300:
            self.changed()

    async def answer(
        self,
        state: State,
        *,
        authorization: str | None,
        query: bytes,
        if_none_match: bytes | None,
        accept_encoding: bytes | None,
        fetch: Fetch,
    ) -> UpstreamAnswer:
        """The list for this request, from memory when current, else fetched (and kept)."""
        view = await _view(state, authorization) if self.confirmed else None
        if view is None:
            _BYPASS.inc()
            return await fetch()
        entry = self.hit(view, query)
        if entry is None:
            found = await self._load((view, query), fetch)
            if not isinstance(found, Entry):
                return found
            entry = found
        return entry.answer(if_none_match=if_none_match, accepts_gzip=accepts_gzip(accept_encoding))

    def hit(self, view: str, query: bytes) -> Entry | None:
        """The answer held for this view and query, while the copy is confirmed; else None."""
        if not self.confirmed:
            return None
        entry = self._entries.get((view, query))
        if entry is not None:
            _HIT.inc()
        return entry

    async def _load(self, key: Key, fetch: Fetch) -> UpstreamAnswer | Entry:
        """The key's answer from upstream, kept when it may be.

        Callers that miss a key while its fetch runs share that fetch, which runs in a task of
        its own so a caller that goes away does not cancel it for the others; only for keys
        whose answer was kept before, so the gateway never merges requests whose answers are
        its service's to give one by one.
        """
        loading = self._loading.get(key)
        if loading is not None:
            _COALESCED.inc()
            return await asyncio.shield(loading)
        _MISS.inc()
        if key not in self._kept_before:
            return await self._fetch(key, fetch)
        loading = asyncio.ensure_future(self._fetch(key, fetch))
        self._loading[key] = loading
        return await asyncio.shield(loading)

    async def _fetch(self, key: Key, fetch: Fetch) -> UpstreamAnswer | Entry:
        epoch = self.epoch
        try:
            answer = await fetch()
        finally:
            if self._loading.get(key) is asyncio.current_task():
                del self._loading[key]
        etag = keepable_etag(answer)
        if etag is None:
            return answer
        entry = Entry.of(answer, etag)
        if epoch == self.epoch:
            self._store(key, entry)
        return entry

    def _store(self, key: Key, entry: Entry) -> None:
        for kept in (self._entries, self._kept_before):
            if key not in kept and len(kept) >= self.max_entries:
                del kept[next(iter(kept))]
        self._entries[key] = entry
        self._kept_before[key] = None


async def _view(state: State, authorization: str | None) -> str | None:
    """Whose list a caller sees (public or admin); None when inventory should judge the token."""
    if authorization is None:
        return PUBLIC_VIEW
    try:
        principal = await authenticate(state, authorization)
    except DomainError:
        return None  # forwarded, so inventory answers a bad token as it always does
    return ADMIN_VIEW if principal.is_admin else PUBLIC_VIEW
