"""The password policy and argon2id hashing."""

from __future__ import annotations

import asyncio
import threading

import pytest
from argon2 import PasswordHasher

from services.auth.passwords import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    Passwords,
    common_passwords,
    password_policy_violation,
)


@pytest.mark.parametrize(
    "password",
    ["x" * PASSWORD_MIN_LENGTH, "x" * PASSWORD_MAX_LENGTH, "pässwörd", "  spaced out  "],
)
def test_acceptable_passwords(password: str) -> None:
    assert password_policy_violation(password) is None


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("", "at least 8"),
        ("x" * (PASSWORD_MIN_LENGTH - 1), "at least 8"),
        ("x" * (PASSWORD_MAX_LENGTH + 1), "at most 128"),
        (" " * 12, "whitespace"),
    ],
)
def test_unacceptable_passwords(password: str, reason: str) -> None:
    violation = password_policy_violation(password)
    assert violation is not None
    assert reason in violation


def fast_passwords(time_cost: int = 1) -> Passwords:
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=1024, parallelism=1)
    return Passwords(hasher, max_concurrent=4)


async def test_hash_is_argon2id_salted_and_verifies() -> None:
    passwords = fast_passwords()
    first = await passwords.hash("a good password")
    second = await passwords.hash("a good password")
    assert first.startswith("$argon2id$")
    assert first != second
    assert await passwords.verify(first, "a good password")
    assert not await passwords.verify(first, "a wrong password")


async def test_a_corrupt_hash_never_matches() -> None:
    passwords = fast_passwords()
    assert not await passwords.verify("not-a-hash", "anything")
    assert not passwords.needs_rehash("not-a-hash")


async def test_needs_rehash_when_parameters_change() -> None:
    stored = await fast_passwords(time_cost=1).hash("a good password")
    assert not fast_passwords(time_cost=1).needs_rehash(stored)
    assert fast_passwords(time_cost=2).needs_rehash(stored)


async def test_verify_nothing_never_succeeds() -> None:
    passwords = fast_passwords()
    await passwords.verify_nothing("")
    await passwords.verify_nothing("any password")


class MeetingHasher(PasswordHasher):
    """Each hash waits (bounded) for `parties` hashes to run at the same time."""

    def __init__(self, parties: int) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.barrier = threading.Barrier(parties, timeout=0.5)
        self.met = 0

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        try:
            self.barrier.wait()
            self.met += 1
        except threading.BrokenBarrierError:
            pass
        return super().hash(password, salt=salt)


async def test_no_more_hashes_run_at_once_than_their_half_of_the_slots() -> None:
    hasher = MeetingHasher(parties=3)
    passwords = Passwords(hasher, max_concurrent=4)
    async with asyncio.timeout(10):
        hashes = await asyncio.gather(*(passwords.hash(f"password {i}") for i in range(3)))
    assert len(set(hashes)) == 3
    # Three hashes never ran together, so the third caller's barrier broke for all of them.
    assert hasher.met == 0


async def test_hashes_up_to_their_half_of_the_slots_run_at_once() -> None:
    hasher = MeetingHasher(parties=2)
    passwords = Passwords(hasher, max_concurrent=4)
    async with asyncio.timeout(10):
        await asyncio.gather(*(passwords.hash(f"password {i}") for i in range(2)))
    assert hasher.met == 2


class BlockedHasher(PasswordHasher):
    """Hashes wait (bounded) until `release` is set; verifies run at once."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.release = threading.Event()

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.release.wait(timeout=10)
        return super().hash(password, salt=salt)


async def test_a_login_never_waits_behind_registrations() -> None:
    hasher = BlockedHasher()
    stored = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("the password")
    passwords = Passwords(hasher, max_concurrent=4)
    registrations = [asyncio.create_task(passwords.hash(f"new {i}")) for i in range(20)]
    await asyncio.sleep(0)  # one loop turn: every registration takes a slot or queues for one
    try:
        async with asyncio.timeout(5):
            assert await passwords.verify(stored, "the password")
    finally:
        hasher.release.set()
        async with asyncio.timeout(10):
            await asyncio.gather(*registrations)


@pytest.mark.parametrize("password", ["password", "12345678", "Baseball", "iloveyou", "TRUSTNO1"])
def test_common_passwords_are_refused_whatever_their_case(password: str) -> None:
    violation = password_policy_violation(password)
    assert violation is not None
    assert "most common" in violation


def test_the_deny_list_is_bundled_and_large() -> None:
    assert len(common_passwords()) > 10_000
    assert all(len(word) >= PASSWORD_MIN_LENGTH for word in common_passwords())
