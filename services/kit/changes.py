"""Change signals over Redis, and the job that keeps another process's copy current with one.

A signal is a generation counter a writer increments after its commit and announces on a
channel, in one script run (`mark`). Inventory gives two, the contract between it and the
services that keep a copy of its data (which never import each other):

- `PRODUCT_CHANGES`: any product or stock change (every reservation too). Inventory's Redis page
  cache compares pages against the counter; the gateway keeps the product list in memory.
- `CATALOGUE_CHANGES`: a change of what prices an order (a product created or edited: price,
  currency, name, SKU, active), never stock. Orders keeps the looked-up products in memory.

`ChangeWatch` is the runtime job that follows a signal for a `Follower` (the copy): it hears the
channel, and reads the counter every `check_seconds` for a message pub/sub lost (it delivers at
most once); any new value, and the first one after a (re)start, calls `changed()`. After each
read it calls `confirm(asked)`: the copy may answer while its last confirmation is younger than
twice the check interval, so a change reaches it within the pub/sub delay (milliseconds) and at
most 2 x `check_seconds` when a message is lost. With Redis unreachable the job ends with the
error and calls `unconfirm()`; the copy then stops answering from memory until the runtime has
started the job again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

_MARK_CHANGED = """
for i, key in ipairs(KEYS) do
    redis.call('PUBLISH', ARGV[i], redis.call('INCR', key))
end
return #KEYS
"""


@dataclass(frozen=True, slots=True)
class ChangeSignal:
    key: str
    """The generation counter."""
    channel: str
    """Where each new generation is published."""

    async def generation(self, redis: Redis) -> int:
        """The current generation (0 before the first change)."""
        return int(await redis.get(self.key) or 0)


PRODUCT_CHANGES = ChangeSignal("inventory:products:generation", "inventory:products:changed")
CATALOGUE_CHANGES = ChangeSignal("inventory:catalogue:generation", "inventory:catalogue:changed")


async def mark(redis: Redis, *signals: ChangeSignal) -> None:
    """Increment and announce each signal, in one round trip."""
    await redis.eval(
        _MARK_CHANGED,
        len(signals),
        *(s.key for s in signals),
        *(s.channel for s in signals),
    )


class Follower(Protocol):
    """A copy kept current by a `ChangeWatch`."""

    def changed(self) -> None:
        """The source changed: nothing held (or being fetched) is current any more."""

    def confirm(self, asked: float) -> None:
        """What is held was current at monotonic time `asked`."""

    def unconfirm(self) -> None:
        """Currency is unknown: stop answering from the copy."""


class ChangeWatch:
    """The job following `signal` for `follower` (see the module docstring)."""

    def __init__(
        self, redis: Redis, signal: ChangeSignal, follower: Follower, check_seconds: float
    ) -> None:
        self._redis = redis
        self._signal = signal
        self._follower = follower
        self._check_seconds = check_seconds
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._signal.channel)
            known: int | None = None
            next_check = time.monotonic()
            while not self._stop.is_set():
                wait = next_check - time.monotonic()
                if wait > 0:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
                    if message is not None and message.get("type") == "message":
                        known = self._heard(known, int(message["data"]))
                    continue
                # The confirmation counts from before the read: the value read was current then.
                asked = time.monotonic()
                known = self._heard(known, await self._signal.generation(self._redis))
                self._follower.confirm(asked)
                next_check = asked + self._check_seconds
        finally:
            self._follower.unconfirm()
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _heard(self, known: int | None, generation: int) -> int:
        """Tell the follower if `generation` is not the one its copy was built in.

        The first value heard counts as a change too: whatever happened before is unknown.
        Messages and reads may interleave out of order, which only drops the copy once more
        than needed.
        """
        if generation != known:
            self._follower.changed()
        return generation
