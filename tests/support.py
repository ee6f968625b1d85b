"""Helpers every test tier shares: callers with real access tokens, waiting for effects, and a
clock the test sets."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from services.kit.settings import ServiceSettings
from services.kit.tokens import Principal, Role
from tests.signing import sign

T = TypeVar("T")


class Clock:
    """For code that takes `clock: Callable[[], float]`: returns `now`, which the test moves."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Bearer:
    """A caller holding a real access token signed with the test platform's key."""

    principal: Principal
    token: str

    @property
    def id(self) -> str:
        return self.principal.user_id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def bearer(settings: ServiceSettings, role: Role = "USER") -> Bearer:
    """A new user with `role` and an access token for it."""
    user_id = str(uuid.uuid4())
    principal = Principal(user_id=user_id, email=f"{user_id[:8]}@example.com", role=role)
    return Bearer(principal, sign(settings, principal))


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, within: float = 30.0, what: str = "condition"
) -> T:
    """Poll `check` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


def wait_until(
    check: Callable[[], T | None], *, timeout: float = 30.0, message: str = "", every: float = 0.3
) -> T:
    """Poll `check` (blocking) until it returns something truthy; return that, or fail after
    `timeout` seconds naming `message` and the last answer (an AssertionError counts as one)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except AssertionError as exc:
            last = exc
        else:
            if last:
                return cast(T, last)
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {message} (last: {last!r})")
        time.sleep(every)
