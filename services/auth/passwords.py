"""The password policy and argon2id hashing, off the event loop.

argon2 is deliberately slow and memory hungry, so every hash and verify runs in a worker thread,
and semaphores let only a few run at once: each takes ARGON2_MEMORY_COST_KIB (64 MiB by
default), and 20 concurrent registrations without a bound took auth to 476 MB and an honest
login from 0.1 s to 1.9 s. Callers beyond the bound wait for a slot without holding memory.

The slots are split: half of them (rounded up) verify logins, the rest hash new passwords, so
a flood of registrations never queues a login behind it. Measured on two cores with the
default parameters, a login verify behind 20 concurrent registrations took 3.2 s with one
shared queue of four slots and 0.44 s with two slots each; peak memory 292 MiB and 213 MiB
(six unbounded worker threads: 420 MiB, more threads on bigger machines).

A new password must be 8 to 128 characters and not one of the 11,611 most common passwords of
that length (common-passwords.json, from zxcvbn's frequency list, MIT licensed), compared
without regard to case: those are the first guesses of any online or offline attack, and the
per-address login limit only slows the first kind.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from services.auth.settings import Settings

PASSWORD_MIN_LENGTH = 8
# The upper bound keeps a request from making argon2 chew on megabytes.
PASSWORD_MAX_LENGTH = 128

COMMON_PASSWORDS_FILE = Path(__file__).with_name("common-passwords.json")

log = logging.getLogger(__name__)


@cache
def common_passwords() -> frozenset[str]:
    """The deny list, lowercase (read once)."""
    document = json.loads(COMMON_PASSWORDS_FILE.read_text(encoding="utf-8"))
    return frozenset(word.lower() for word in document["passwords"])


def password_policy_violation(password: str) -> str | None:
    """Why `password` is not acceptable for a new account, or None when it is."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"The password must be at least {PASSWORD_MIN_LENGTH} characters long."
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"The password must be at most {PASSWORD_MAX_LENGTH} characters long."
    if not password.strip():
        return "The password must not be only whitespace."
    if password.lower() in common_passwords():
        return "This password is one of the most common ones; choose another."
    return None


class Passwords:
    """Hashes and verifies passwords with argon2id in worker threads."""

    def __init__(self, hasher: PasswordHasher, *, max_concurrent: int) -> None:
        """`max_concurrent` argon2 runs at most, split between verifies and hashes (at least
        one each)."""
        self._hasher = hasher
        self._verify_slots = asyncio.Semaphore(max(1, (max_concurrent + 1) // 2))
        self._hash_slots = asyncio.Semaphore(max(1, max_concurrent // 2))
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        async with self._hash_slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str, password: str) -> bool:
        """Whether `password` matches `stored_hash`; a corrupt hash never matches."""
        try:
            async with self._verify_slots:
                return await asyncio.to_thread(self._hasher.verify, stored_hash, password)
        except InvalidHashError:
            log.error("stored password hash is not a valid argon2 hash")
            return False
        except VerificationError:
            return False

    async def prepare(self) -> None:
        """Make the hash `verify_nothing` checks against (done at start, not on a request)."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))

    async def verify_nothing(self, password: str) -> None:
        """Spend the time of a real verify, so unknown emails answer as slowly as known ones."""
        await self.prepare()
        assert self._dummy_hash is not None
        await self.verify(self._dummy_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return False


def build_passwords(settings: Settings) -> Passwords:
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost_kib,
        parallelism=settings.argon2_parallelism,
        type=Type.ID,
    )
    return Passwords(hasher, max_concurrent=settings.password_hash_slots)
