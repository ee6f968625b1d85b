"""The gate's queue under overload (services/gateway/admission.py): a hold that begins refuses
the requests of its route waiting in the queue, one handed a slot during a hold is not
forwarded, and a queue that does not empty makes who joins it wait only a moment."""

from __future__ import annotations

import asyncio

import pytest

from services.gateway.admission import Admission, Gate
from services.gateway.errors import Overloaded
from services.gateway.routes import Route
from tests.support import eventually
from tests.unit.gateway.support import CREATE, STATUS

WAIT_SECONDS = 5.0
REFUSED = [(b"content-type", b"application/problem+json"), (b"Retry-After", b"2")]


def _admission() -> Admission:
    return Admission(
        ["orders"],
        limit=1,
        queue_length=4,
        queue_seconds=WAIT_SECONDS * 2,
        retry_after=1,
        refusal_hold_seconds=WAIT_SECONDS * 2,
    )


async def _taken(gate: Gate) -> None:
    """Until the gate's one slot is held."""

    async def held() -> bool:
        return gate.in_flight == 1

    await eventually(held, within=WAIT_SECONDS, what="the slot held")


async def _queued(gate: Gate, count: int) -> None:
    """Until `count` requests wait in the gate's queue."""

    async def waiting() -> bool:
        return len(gate._waiters) == count

    await eventually(waiting, within=WAIT_SECONDS, what=f"{count} in the queue")


async def test_a_hold_that_begins_refuses_the_waiting_requests_of_its_route_at_once() -> None:
    admission = _admission()
    gate = admission.gate("orders")
    release = asyncio.Event()

    async def request(method: str, route: Route) -> str:
        async with admission.slot(method, route):
            await release.wait()
        return "forwarded"

    holding = asyncio.create_task(request("POST", CREATE))
    await _taken(gate)
    creating = asyncio.create_task(request("POST", CREATE))
    setting_status = asyncio.create_task(request("PUT", STATUS))
    await _queued(gate, 2)

    admission.answered("POST", CREATE, 503, REFUSED)

    with pytest.raises(Overloaded) as refused:
        async with asyncio.timeout(WAIT_SECONDS):
            await creating
    assert refused.value.retry_after == 2
    assert [kind for kind, _ in gate._waiters] == [("PUT", STATUS.pattern)]
    assert not setting_status.done(), "another route's request keeps its place"
    release.set()
    async with asyncio.timeout(WAIT_SECONDS):
        assert await holding == await setting_status == "forwarded"
    assert (gate.in_flight, len(gate._waiters)) == (0, 0)


async def test_a_request_handed_a_slot_during_a_hold_is_refused_before_it_is_forwarded() -> None:
    admission = _admission()
    gate = admission.gate("orders")
    release = asyncio.Event()
    forwarded: list[str] = []

    async def first() -> None:
        async with admission.slot("POST", CREATE):
            await release.wait()
        # The upstream's refusal is noted after the slot is handed on, as the proxy does.
        admission.answered("POST", CREATE, 503, REFUSED)

    async def second() -> None:
        async with admission.slot("POST", CREATE):
            forwarded.append("second")

    holding = asyncio.create_task(first())
    await _taken(gate)
    waiting = asyncio.create_task(second())
    await _queued(gate, 1)
    release.set()

    with pytest.raises(Overloaded):
        async with asyncio.timeout(WAIT_SECONDS):
            await waiting
    await holding
    assert forwarded == []
    assert gate.in_flight == 0, "the slot it was handed is given back"


async def test_who_joins_a_queue_that_has_not_emptied_waits_only_a_moment() -> None:
    gate = Gate(
        "orders",
        limit=1,
        queue_length=4,
        queue_seconds=WAIT_SECONDS * 2,
        retry_after=1,
        standing_seconds=0.05,
        standing_wait_seconds=0.01,
    )
    release = asyncio.Event()

    async def request() -> str:
        async with gate.slot():
            await release.wait()
        return "forwarded"

    holding = asyncio.create_task(request())
    await _taken(gate)
    early = asyncio.create_task(request())
    await _queued(gate, 1)
    await asyncio.sleep(0.06)

    with pytest.raises(Overloaded):
        async with asyncio.timeout(WAIT_SECONDS):
            await request()  # the queue has stood for longer than 0.05 s
    assert not early.done(), "who joined an empty queue waits its whole time"
    release.set()
    async with asyncio.timeout(WAIT_SECONDS):
        assert await holding == await early == "forwarded"

    # The queue emptied: a new one is not standing yet.
    release.clear()
    holding = asyncio.create_task(request())
    await _taken(gate)
    later = asyncio.create_task(request())
    await _queued(gate, 1)
    await asyncio.sleep(0.05)
    assert not later.done(), "it waits more than the standing queue's 0.01 s"
    release.set()
    async with asyncio.timeout(WAIT_SECONDS):
        assert await holding == await later == "forwarded"
