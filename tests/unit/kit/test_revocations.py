"""Reading auth's revocation markers: versions and families, the short cache, failing open."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from services.kit.errors import Unauthorized
from services.kit.tokens import Principal, Revocations, family_marker_key, user_marker_key
from tests.support import Clock

pytestmark = pytest.mark.asyncio

ALICE = Principal("u-1", "alice@example.com", "USER", version=2, session_id="f-1")


class FakeRedis:
    """MGET over a dict, counting calls; `down` raises, `hang` never answers."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.calls = 0
        self.down = False
        self.hang = False

    async def mget(self, keys: list[str]) -> list[Any]:
        self.calls += 1
        if self.down:
            raise RedisConnectionError("refused")
        if self.hang:
            await asyncio.Event().wait()
        return [self.data.get(key) for key in keys]


def revocations(redis: FakeRedis, clock: Clock) -> Revocations:
    return Revocations(redis, cache_seconds=1.0, timeout_seconds=0.05, clock=clock)  # type: ignore[arg-type]


async def test_tokens_below_the_accounts_version_or_of_a_revoked_family_are_refused() -> None:
    redis, clock = FakeRedis(), Clock()
    markers = revocations(redis, clock)
    await markers.check(ALICE)
    redis.data[user_marker_key("u-1")] = "2"
    clock.now += 2
    await markers.check(ALICE)  # version 2 is still valid
    redis.data[user_marker_key("u-1")] = "3"
    clock.now += 2
    with pytest.raises(Unauthorized, match="revoked"):
        await markers.check(ALICE)

    redis.data.clear()
    redis.data[family_marker_key("f-1")] = "1"
    clock.now += 2
    with pytest.raises(Unauthorized, match="revoked"):
        await markers.check(ALICE)
    other_login = Principal("u-1", "alice@example.com", "USER", version=2, session_id="f-2")
    await markers.check(other_login)


async def test_a_read_is_cached_for_the_cache_time_unless_fresh_is_asked() -> None:
    redis, clock = FakeRedis(), Clock()
    markers = revocations(redis, clock)
    await markers.check(ALICE)
    redis.data[user_marker_key("u-1")] = "9"
    clock.now += 0.5
    await markers.check(ALICE)
    assert redis.calls == 1
    assert await markers.revoked([ALICE], fresh=True) == [True]
    assert redis.calls == 2


async def test_an_announced_marker_counts_at_once() -> None:
    redis, clock = FakeRedis(), Clock()
    markers = revocations(redis, clock)
    await markers.check(ALICE)
    markers.remember(user_marker_key("u-1"), "3")
    with pytest.raises(Unauthorized):
        await markers.check(ALICE)


@pytest.mark.parametrize("failure", ["down", "hang"])
async def test_without_redis_the_last_markers_read_hold_and_unknown_ones_pass(
    failure: str,
) -> None:
    redis, clock = FakeRedis(), Clock()
    markers = revocations(redis, clock)
    revoked = Principal("u-2", "bob@example.com", "USER", version=0)
    redis.data[user_marker_key("u-2")] = "1"
    assert await markers.revoked([revoked]) == [True]

    setattr(redis, failure, True)
    clock.now += 5
    assert await markers.revoked([revoked, ALICE]) == [True, False]
    calls = redis.calls
    # Redis is left alone for the cache time after a failure: one wait, not one per request.
    assert await markers.revoked([ALICE]) == [False]
    assert redis.calls == calls
