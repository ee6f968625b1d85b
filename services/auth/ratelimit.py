"""Login rate limits: fixed windows counted in Redis, per email and per client address.

A fixed window is one counter per key that expires when the window ends: one round trip, O(1)
memory, and attempts cannot extend it (the expiry is set only when the window opens). Its known
weakness, up to twice the limit across a window boundary, is acceptable for limits this small.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.auth.errors import RateLimiterUnavailable
from services.auth.settings import IPNetwork, Settings
from services.kit.errors import RateLimited

KEY_PREFIX = "auth:login"


@dataclass(frozen=True, slots=True)
class Window:
    limit: int
    seconds: int


def retry_after_seconds(pttl_ms: int, window: Window) -> int:
    """Whole seconds until the window of a key with `pttl_ms` left ends (Redis PTTL semantics).

    A key without an expiry (-1) or already gone (-2) cannot say; then the whole window is the
    safe answer. Rounding is up, so a client that waits exactly that long is let in.
    """
    if pttl_ms < 0:
        return window.seconds
    return max(1, math.ceil(pttl_ms / 1000))


def email_key(email: str) -> str:
    """The counter key of an email; hashed so Redis holds no addresses in the clear."""
    digest = hashlib.sha256(email.encode()).hexdigest()[:32]
    return f"{KEY_PREFIX}:email:{digest}"


def address_key(address: str) -> str:
    return f"{KEY_PREFIX}:address:{address}"


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[IPNetwork]
) -> str:
    """The address a request comes from, for rate limiting.

    X-Forwarded-For is believed only when the socket peer is a trusted proxy (the gateway). The
    header is read from the right, skipping trusted proxies: the first address that is not one
    was written by our own proxy, while anything further left came from the client and could
    be forged to dodge the per-address limit.
    """
    if peer is None:
        return "unknown"
    if not forwarded_for or not _is_trusted(peer, trusted):
        return peer
    reported = peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return reported
        reported = str(address)
        if not _is_trusted(reported, trusted):
            return reported
    return reported


def _is_trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in trusted)


class LoginLimiter:
    """Counts login attempts per address and failures per email.

    Redis being down refuses logins (503) instead of silently dropping the brute-force guard.
    """

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self.per_email = Window(
            settings.login_email_max_failures, settings.login_email_window_seconds
        )
        self.per_address = Window(
            settings.login_address_max_attempts, settings.login_address_window_seconds
        )

    async def count_attempt(self, address: str) -> None:
        """Count an attempt from `address`; `RateLimited` once its window is full."""
        count, pttl = await self._increment(address_key(address), self.per_address)
        if count > self.per_address.limit:
            raise _limited(retry_after_seconds(pttl, self.per_address))

    async def check_email(self, email: str) -> None:
        """`RateLimited` while `email` has used up its failed attempts."""
        key = email_key(email)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(key)
                pipe.pttl(key)
                raw, pttl = await pipe.execute()
        except RedisError as exc:
            raise RateLimiterUnavailable() from exc
        if raw is not None and int(raw) >= self.per_email.limit:
            raise _limited(retry_after_seconds(pttl, self.per_email))

    async def count_failure(self, email: str) -> None:
        await self._increment(email_key(email), self.per_email)

    async def clear_failures(self, email: str) -> None:
        try:
            await self._redis.delete(email_key(email))
        except RedisError as exc:
            raise RateLimiterUnavailable() from exc

    async def _increment(self, key: str, window: Window) -> tuple[int, int]:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, window.seconds, nx=True)
                pipe.pttl(key)
                count, _, pttl = await pipe.execute()
        except RedisError as exc:
            raise RateLimiterUnavailable() from exc
        return int(count), int(pttl)


def _limited(retry_after: int) -> RateLimited:
    return RateLimited(
        f"Too many login attempts; try again in {retry_after} seconds.", retry_after=retry_after
    )
