"""Change signals over Redis, and the job that keeps another process's copy current with one.

A signal is a generation counter a writer increments after its commit and announces on a
channel, in one script run (`mark`). Inventory gives two, the contract between it and the
services that keep a copy of its data (which never import each other):

- `PRODUCT_CHANGES`: any product or stock change (every reservation too). Inventory's Redis page
  cache compares pages against the counter; the gateway keeps the product list in memory.
- `CATALOGUE_CHANGES`: a change of what prices an order (a product created or edited: price,
  currency, name, SKU, active), never stock. Orders keeps the looked-up products in memory.

`ChangeWatch` (a `ChannelListener`, the kit's pub/sub job) follows a signal for a
`FollowedCopy` (the copy): it hears the channel, and reads the counter every
`check_seconds` for a message pub/sub lost (it delivers at most once); any new value,
and the first one after a (re)start, calls `changed()`. After each
read it calls `confirm(asked)`: the copy may answer while its last confirmation is younger than
twice the check interval, so a change reaches it within the pub/sub delay (milliseconds) and at
most 2 x `check_seconds` when a message is lost. With Redis unreachable the job ends with the
error and calls `unconfirm()`; the copy then stops answering from memory until the runtime has
started the job again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


class FollowedCopy:
    """A copy kept current by a `ChangeWatch`: the change epoch its contents belong to, how
    often the watch confirms it (`check_seconds`) and how long it is confirmed. A subclass holds
    the contents and drops them in `drop()`; a fetch that started in an older epoch than
    `epoch` must not be kept."""

    def __init__(self, check_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.check_seconds = check_seconds
        self.clock = clock
        self.epoch = 0
        self._confirmed_until = 0.0

    def drop(self) -> None:
        """Forget the contents."""

    def changed(self) -> None:
        """The source changed: nothing held (or being fetched) is current any more."""
        self.epoch += 1
        self.drop()

    def confirm(self, asked: float) -> None:
        """What is held was current at monotonic time `asked`."""
        self._confirmed_until = asked + 2 * self.check_seconds

    def unconfirm(self) -> None:
        """Currency is unknown: stop answering from the copy."""
        self._confirmed_until = 0.0

    @property
    def confirmed(self) -> bool:
        """Whether the copy may answer now."""
        return self.clock() < self._confirmed_until


class ChannelListener:
    """A runtime job reading one Redis pub/sub channel until `stop()`.

    Once subscribed it calls `subscribed()`, then `heard(data)` for each message and `tick()`
    after each wait of at most `wait_seconds()`; `ended()` when it stops or fails. A lost
    Redis connection ends the job with the error, and the runtime starts it again.
    """

    def __init__(self, redis: Redis, channel: str) -> None:
        self._redis = redis
        self._channel = channel
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def subscribed(self) -> None:
        return

    async def heard(self, data: Any) -> None:
        return

    async def tick(self) -> None:
        return

    def wait_seconds(self) -> float:
        return 0.5

    def ended(self) -> None:
        return

    async def run(self) -> None:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            await self.subscribed()
            while not self._stop.is_set():
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=self.wait_seconds()
                )
                if message is not None and message.get("type") == "message":
                    await self.heard(message["data"])
                await self.tick()
        finally:
            self.ended()
            await pubsub.aclose()  # type: ignore[no-untyped-call]


class ChangeWatch(ChannelListener):
    """The job following `signal` for `follower`, every `follower.check_seconds` (see the
    module docstring)."""

    def __init__(self, redis: Redis, signal: ChangeSignal, follower: FollowedCopy) -> None:
        super().__init__(redis, signal.channel)
        self._signal = signal
        self._follower = follower
        self._known: int | None = None
        self._next_check = time.monotonic()

    def wait_seconds(self) -> float:
        return max(self._next_check - time.monotonic(), 0.0)

    async def heard(self, data: Any) -> None:
        self._note(int(data))

    async def tick(self) -> None:
        if time.monotonic() < self._next_check:
            return
        # The confirmation counts from before the read: the value read was current then.
        asked = time.monotonic()
        self._note(await self._signal.generation(self._redis))
        self._follower.confirm(asked)
        self._next_check = asked + self._follower.check_seconds

    def ended(self) -> None:
        self._follower.unconfirm()

    def _note(self, generation: int) -> None:
        """Tell the follower if `generation` is not the one its copy was built in.

        The first value heard counts as a change too: whatever happened before is unknown.
        Messages and reads may interleave out of order, which only drops the copy once more
        than needed.
        """
        if generation != self._known:
            self._follower.changed()
        self._known = generation
