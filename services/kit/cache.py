"""The Redis client every service shares."""

from __future__ import annotations

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
