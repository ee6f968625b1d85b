"""The Redis client every service shares, and the product list's validators.

Inventory tags each page of the list with `weak_etag`, and the gateway keeps only answers that
carry one; both live here because they are the contract between the two services, which never
import each other (so are the change signals: services/kit/changes.py).
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

from services.kit.settings import ServiceSettings


def create_redis(settings: ServiceSettings) -> Redis:
    """An asyncio Redis client for REDIS_URL (connections are opened lazily)."""
    return Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
    )


def weak_etag(body: bytes) -> str:
    """A weak validator for a cached JSON answer: the same JSON, gzipped or not, shares it."""
    return f'W/"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 section 13.1.2) of `etag` with an If-None-Match list."""
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in if_none_match.split(","))
