"""Calls that come while one group runs are run together as the next group.

`GroupedCalls` serves a statement that each request would otherwise run alone (orders' create),
so that the requests that arrive while one runs share the next one: one statement, one commit
and one WAL flush for all of them. A call that finds no group running starts one at once,
alone; the calls that come while it runs wait for it and then go together, at most `max_size`
of them. One group runs at a time, so a call waits behind at most one group before its own
starts. With `gather_ms`, a group waits that long for more calls before it runs, but only
while the groups have been taking at least `gather.BUSY_FROM_RATE` calls a second
(`gather.BusyGather`): under load, groups of several calls instead of one or two; when calls
are few, none waits.

`run` gets the group's items and returns one result for each, in their order, or `Failed(exc)`
for an item that fails on its own (its call raises `exc`; the others' results stand). Two items
with the same `key` (not None) never share a group: the later waits for the next, so the second
of two creates with one idempotency key finds the first's key taken, as two separate statements
would. If the group fails with one of the exceptions of `alone_on` (a value the database
refuses, say), each of its items is run again alone, so that an item's failure is its own and
the others' results stand; `run` must make that safe, as a statement that failed wrote nothing.
Any other failure (a lost connection) is every item's.

A caller that is cancelled while its item waits or runs does not take the item out: it runs
with its group, as a statement already sent would.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from services.kit.gather import BusyGather
from services.kit.metrics import CALL_GROUPS

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)


def _no_key(_item: object) -> Hashable | None:
    return None


@dataclass(frozen=True, slots=True)
class Failed:
    """An item's own failure among a group's results: returned by `run` for an item it refuses,
    or recorded for an item that failed when the group was run item by item."""

    exc: Exception


class GroupedCalls(Generic[T, R]):
    """`call(item)` runs `item` with the calls waiting when its turn comes (the module
    docstring)."""

    def __init__(
        self,
        run: Callable[[Sequence[T]], Awaitable[Sequence[R | Failed]]],
        *,
        service: str,
        name: str,
        max_size: int = 32,
        key: Callable[[T], Hashable | None] = _no_key,
        alone_on: tuple[type[Exception], ...] = (),
        gather_ms: int = 0,
    ) -> None:
        if max_size < 1:
            raise ValueError("a group holds at least one call")
        self._run = run
        self._max_size = max_size
        self._key = key
        self._alone_on = alone_on
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None
        self._sizes = CALL_GROUPS.labels(service, name)
        self._gather = BusyGather(gather_ms)

    @property
    def waiting(self) -> int:
        """The calls waiting for the next group."""
        return len(self._waiting)

    async def call(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._runner is None or self._runner.done():
            # A context of its own: the runner serves every caller, not the one that started it
            # (its request id and span).
            self._runner = asyncio.create_task(self._run_groups(), context=contextvars.Context())
        return await future

    async def _run_groups(self) -> None:
        while self._waiting:
            group: list[tuple[T, asyncio.Future[R]]] = []
            try:
                wait = self._gather.wait_seconds()
                if wait and len(self._waiting) < self._max_size:
                    await asyncio.sleep(wait)  # more calls, under load (the module docstring)
                group = self._next_group()
                self._gather.took(len(group))
                self._sizes.observe(len(group))
                results = await self._run_group(group)
            except Exception as exc:  # every item's failure; the runner goes on
                results = [Failed(exc)] * len(group)
            except BaseException:  # the runner cancelled (shutdown): so are the waiting calls
                for _, future in group + self._waiting:
                    future.cancel()
                self._waiting = []
                raise
            for (_, future), result in zip(group, results, strict=True):
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(result, Failed):
                    future.set_exception(result.exc)
                else:
                    future.set_result(result)

    def _next_group(self) -> list[tuple[T, asyncio.Future[R]]]:
        """The waiting calls, oldest first, up to the size, none sharing a key with another."""
        group: list[tuple[T, asyncio.Future[R]]] = []
        later: list[tuple[T, asyncio.Future[R]]] = []
        keys: set[Hashable] = set()
        for waiting in self._waiting:
            key = self._key(waiting[0])
            if len(group) == self._max_size or (key is not None and key in keys):
                later.append(waiting)
                continue
            if key is not None:
                keys.add(key)
            group.append(waiting)
        self._waiting = later
        return group

    async def _run_group(self, group: list[tuple[T, asyncio.Future[R]]]) -> list[R | Failed]:
        items = [item for item, _ in group]
        try:
            return await self._run_checked(items)
        except self._alone_on as exc:
            if len(items) == 1:
                return [Failed(exc)]
            log.warning(
                "a group of calls failed; running each alone",
                extra={"size": len(items), "error": repr(exc)},
            )
        alone: list[R | Failed] = []
        for item in items:
            try:
                alone += await self._run_checked([item])
            except self._alone_on as own:
                alone.append(Failed(own))
        return alone

    async def _run_checked(self, items: list[T]) -> list[R | Failed]:
        results: list[R | Failed] = list(await self._run(items))
        if len(results) != len(items):
            raise RuntimeError(f"{len(items)} calls run, {len(results)} results returned")
        return results
