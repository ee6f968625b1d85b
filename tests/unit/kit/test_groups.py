"""GroupedCalls (services/kit/groups.py): who shares a group, and whose failure is whose."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from prometheus_client import REGISTRY

from services.kit.groups import Failed, GroupedCalls


class Refused(Exception):
    """A value the store refuses: the kind of failure a group is retried item by item for."""


@dataclass
class Store:
    """Runs each group when `release` is set (at once if `hold` is off), recording the groups."""

    hold: bool = False
    refuse: set[str] = field(default_factory=set)
    decline: set[str] = field(default_factory=set)
    down: bool = False
    groups: list[list[str]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, items: Sequence[str]) -> list[str | Failed]:
        self.groups.append(list(items))
        self.started.set()
        if self.hold:
            await self.release.wait()
        if self.down:
            raise ConnectionError("the store is gone")
        if self.refuse & set(items):
            raise Refused(f"refused: {sorted(self.refuse & set(items))}")
        return [
            Failed(LookupError(f"declined: {item}")) if item in self.decline else item.upper()
            for item in items
        ]


def _calls(store: Store, name: str, **options: object) -> GroupedCalls[str, str]:
    return GroupedCalls(
        store.run,
        service="test",
        name=name,
        key=lambda item: item.split(":")[0] if ":" in item else None,
        alone_on=(Refused,),
        **options,  # type: ignore[arg-type]
    )


async def _while_first_group_runs(
    store: Store, calls: GroupedCalls[str, str], first: str, rest: list[str]
) -> list[str | BaseException]:
    """Call `first`, and `rest` while its group is held; then let every group run."""
    store.hold = True
    head = asyncio.create_task(calls.call(first))
    await store.started.wait()
    tail = [asyncio.create_task(calls.call(item)) for item in rest]
    await asyncio.sleep(0)
    store.hold = False
    store.release.set()
    return await asyncio.gather(head, *tail, return_exceptions=True)


async def test_a_call_alone_runs_at_once_in_a_group_of_its_own() -> None:
    store = Store()
    calls = _calls(store, "alone")

    assert await calls.call("a") == "A"
    assert store.groups == [["a"]]


async def test_calls_made_while_a_group_runs_go_together_as_the_next() -> None:
    store = Store()
    calls = _calls(store, "together")

    results = await _while_first_group_runs(store, calls, "a", ["b", "c", "d"])

    assert results == ["A", "B", "C", "D"]
    assert store.groups == [["a"], ["b", "c", "d"]]


async def test_a_group_holds_at_most_its_size_oldest_first() -> None:
    store = Store()
    calls = _calls(store, "sized", max_size=2)

    results = await _while_first_group_runs(store, calls, "a", ["b", "c", "d", "e"])

    assert results == ["A", "B", "C", "D", "E"]
    assert store.groups == [["a"], ["b", "c"], ["d", "e"]]


async def test_calls_with_one_key_never_share_a_group_and_keep_their_order() -> None:
    store = Store()
    calls = _calls(store, "keyed")

    results = await _while_first_group_runs(store, calls, "x", ["u:1", "v:1", "u:2", "w", "u:3"])

    assert results == ["X", "U:1", "V:1", "U:2", "W", "U:3"]
    assert store.groups == [["x"], ["u:1", "v:1", "w"], ["u:2"], ["u:3"]]


async def test_a_refused_group_is_run_again_one_by_one_so_a_refusal_is_its_own() -> None:
    store = Store(refuse={"c"})
    calls = _calls(store, "alone-on")

    results = await _while_first_group_runs(store, calls, "a", ["b", "c", "d"])

    assert results[:2] == ["A", "B"]
    assert isinstance(results[2], Refused)
    assert results[3] == "D"
    assert store.groups == [["a"], ["b", "c", "d"], ["b"], ["c"], ["d"]]


async def test_an_item_the_run_fails_alone_fails_its_own_call_and_the_group_stands() -> None:
    store = Store(decline={"c"})
    calls = _calls(store, "declined")

    results = await _while_first_group_runs(store, calls, "a", ["b", "c", "d"])

    assert results[:2] == ["A", "B"]
    assert isinstance(results[2], LookupError)
    assert str(results[2]) == "declined: c"
    assert results[3] == "D"
    assert store.groups == [["a"], ["b", "c", "d"]], "not run again"


async def test_any_other_failure_is_every_call_of_the_group_and_the_next_group_runs() -> None:
    store = Store()
    calls = _calls(store, "down")
    store.hold = True
    head = asyncio.create_task(calls.call("a"))
    await store.started.wait()
    failing = [asyncio.create_task(calls.call(item)) for item in ("b", "c")]
    await asyncio.sleep(0)
    store.down = True
    store.hold = False
    store.release.set()

    outcomes = await asyncio.gather(head, *failing, return_exceptions=True)
    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes)
    assert store.groups == [["a"], ["b", "c"]]

    store.down = False
    assert await calls.call("d") == "D"


async def test_a_cancelled_caller_leaves_its_item_in_the_group_and_the_others_their_results() -> (
    None
):
    store = Store(hold=True)
    calls = _calls(store, "cancelled")
    head = asyncio.create_task(calls.call("a"))
    await store.started.wait()
    gone = asyncio.create_task(calls.call("b"))
    stays = asyncio.create_task(calls.call("c"))
    await asyncio.sleep(0)
    gone.cancel()
    store.hold = False
    store.release.set()

    assert await head == "A"
    assert await stays == "C"
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert store.groups == [["a"], ["b", "c"]]


async def test_a_run_that_answers_for_fewer_items_fails_its_group() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def short(items: Sequence[str]) -> list[str]:
        started.set()
        await release.wait()
        return list(items[:1])

    calls: GroupedCalls[str, str] = GroupedCalls(short, service="test", name="short")
    first = asyncio.create_task(calls.call("a"))
    await started.wait()
    rest = [asyncio.create_task(calls.call(item)) for item in ("b", "c")]
    await asyncio.sleep(0)
    release.set()

    outcomes = await asyncio.gather(first, *rest, return_exceptions=True)
    assert outcomes[0] == "a"
    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes[1:])


async def test_each_group_is_counted_by_its_size() -> None:
    store = Store()
    calls = _calls(store, "counted")

    await _while_first_group_runs(store, calls, "a", ["b", "c"])

    labels = {"service": "test", "name": "counted"}
    assert REGISTRY.get_sample_value("grouped_calls_size_count", labels) == 2
    assert REGISTRY.get_sample_value("grouped_calls_size_sum", labels) == 3


def test_a_group_holds_at_least_one_call() -> None:
    with pytest.raises(ValueError, match="at least one"):
        _calls(Store(), "empty", max_size=0)


def _busy(calls: GroupedCalls[str, str]) -> None:
    """Count 300 calls on `calls`' gather just now: as busy as 300 a second."""
    calls._gather.took(300)


async def test_under_load_a_group_waits_for_the_calls_that_come_soon_after_its_first() -> None:
    store = Store()
    calls = _calls(store, "gathered", gather_ms=50)
    _busy(calls)

    first = asyncio.create_task(calls.call("a"))
    await asyncio.sleep(0.005)  # well within the wait: no group has run yet
    assert store.groups == []
    rest = [asyncio.create_task(calls.call(item)) for item in ("b", "c")]

    assert await asyncio.gather(first, *rest) == ["A", "B", "C"]
    assert store.groups == [["a", "b", "c"]]


async def test_when_calls_are_few_a_gathering_group_does_not_wait() -> None:
    store = Store()
    calls = _calls(store, "quiet", gather_ms=10_000)  # a wait no test would sit through

    async with asyncio.timeout(5):
        assert await calls.call("a") == "A"
    assert store.groups == [["a"]]


async def test_a_runner_stopped_while_its_group_gathers_cancels_the_waiting_calls() -> None:
    store = Store()
    calls = _calls(store, "stopped", gather_ms=10_000)
    _busy(calls)

    waiting = [asyncio.create_task(calls.call(item)) for item in ("a", "b")]
    await asyncio.sleep(0.01)  # the runner is in its wait
    assert calls._runner is not None
    calls._runner.cancel()

    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)
    assert store.groups == []
    assert calls.waiting == 0
