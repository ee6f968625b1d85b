"""The Redis client every service shares, and the product-change signal inventory gives.

Inventory marks every product or stock change after its commit by incrementing
`PRODUCT_GENERATION_KEY` and publishing the new value on `PRODUCT_CHANGES_CHANNEL`, in one
script run (`mark_products_changed`). Its own Redis page cache compares pages against the
counter; the gateway's in-memory copy of the list hears the channel and reads the counter as a
backstop for a message it missed (pub/sub delivers at most once). Both names live here because
they are the contract between the two services, which never import each other. So are the
list's validators: inventory tags each page with `weak_etag`, and the gateway keeps only
answers that carry one.
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

from services.kit.settings import ServiceSettings

PRODUCT_GENERATION_KEY = "inventory:products:generation"
PRODUCT_CHANGES_CHANNEL = "inventory:products:changed"
_MARK_CHANGED = """
local generation = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], generation)
return generation
"""


def create_redis(settings: ServiceSettings) -> Redis:
    """An asyncio Redis client for REDIS_URL (connections are opened lazily)."""
    return Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
    )


async def mark_products_changed(redis: Redis) -> int:
    """Increment the product generation and announce it, in one round trip; the new value."""
    generation = await redis.eval(_MARK_CHANGED, 1, PRODUCT_GENERATION_KEY, PRODUCT_CHANGES_CHANNEL)
    return int(generation)


async def product_generation(redis: Redis) -> int:
    """The current product generation (0 before the first change)."""
    return int(await redis.get(PRODUCT_GENERATION_KEY) or 0)


def weak_etag(body: bytes) -> str:
    """A weak validator for a cached JSON answer: the same JSON, gzipped or not, shares it."""
    return f'W/"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 section 13.1.2) of `etag` with an If-None-Match list."""
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in if_none_match.split(","))
