"""Rate limits of login and registration: fixed windows counted in Redis.

Logins are counted per client address (attempts) and per email and client address together
(failures); registrations per client address.

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
REGISTER_KEY_PREFIX = "auth:register"


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


def failures_key(email: str, address: str) -> str:
    """The failure counter of an email from one client address.

    Hashed so Redis holds no email addresses in the clear; the NUL cannot occur in an email, so
    no other pair shares the key.
    """
    digest = hashlib.sha256(f"{email}\0{address}".encode()).hexdigest()[:32]
    return f"{KEY_PREFIX}:failures:{digest}"


def address_key(address: str) -> str:
    return f"{KEY_PREFIX}:address:{address}"


def register_address_key(address: str) -> str:
    return f"{REGISTER_KEY_PREFIX}:address:{address}"


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


class FixedWindows:
    """Fixed-window counters in Redis; Redis being down is `RateLimiterUnavailable` (503)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

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

    async def _peek(self, key: str) -> tuple[int, int]:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(key)
                pipe.pttl(key)
                raw, pttl = await pipe.execute()
        except RedisError as exc:
            raise RateLimiterUnavailable() from exc
        return (int(raw) if raw is not None else 0), int(pttl)

    async def _delete(self, key: str) -> None:
        try:
            await self._redis.delete(key)
        except RedisError as exc:
            raise RateLimiterUnavailable() from exc


class LoginLimiter(FixedWindows):
    """Counts login attempts per address and failures per email and address.

    Failures are counted per (email, client address), not per email alone: a per-email lock
    let anyone lock the owner out with five wrong passwords. Guessing one account's password
    from many addresses is still bounded by each address's own limits. Redis being down
    refuses logins (503) instead of silently dropping the brute-force guard.
    """

    def __init__(self, redis: Redis, settings: Settings) -> None:
        super().__init__(redis)
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
            raise _limited("login", retry_after_seconds(pttl, self.per_address))

    async def check_failures(self, email: str, address: str) -> None:
        """`RateLimited` while `email` has used up its failed attempts from `address`."""
        count, pttl = await self._peek(failures_key(email, address))
        if count >= self.per_email.limit:
            raise _limited("login", retry_after_seconds(pttl, self.per_email))

    async def count_failure(self, email: str, address: str) -> None:
        await self._increment(failures_key(email, address), self.per_email)

    async def clear_failures(self, email: str, address: str) -> None:
        await self._delete(failures_key(email, address))


class RegistrationLimiter(FixedWindows):
    """Counts registrations of any outcome per client address.

    Each new account costs an argon2 hash, so unlimited registration was a cheap way to load
    the service; duplicates count too, so the limit also slows probing which emails exist.
    """

    def __init__(self, redis: Redis, settings: Settings) -> None:
        super().__init__(redis)
        self.per_address = Window(
            settings.register_address_max_attempts, settings.register_address_window_seconds
        )

    async def count_attempt(self, address: str) -> None:
        """Count a registration from `address`; `RateLimited` once its window is full."""
        count, pttl = await self._increment(register_address_key(address), self.per_address)
        if count > self.per_address.limit:
            raise _limited("registration", retry_after_seconds(pttl, self.per_address))


def _limited(action: str, retry_after: int) -> RateLimited:
    return RateLimited(
        f"Too many {action} attempts; try again in {retry_after} seconds.",
        retry_after=retry_after,
    )
