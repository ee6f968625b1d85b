"""An upstream's 503 with Retry-After is repeated by the gateway for a moment, per method and
route, without forwarding; nothing else is."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from services.gateway.admission import Refusals
from services.gateway.errors import Overloaded
from tests.support import Clock
from tests.unit.gateway.support import CREATE, STATUS

REFUSED = [(b"content-type", b"application/problem+json"), (b"Retry-After", b"2")]


def _repeated() -> float:
    value = REGISTRY.get_sample_value("gateway_refusals_repeated_total", {"upstream": "orders"})
    return value or 0.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_refusal_is_repeated_for_its_method_and_route_until_the_hold_ends(clock: Clock) -> None:
    refusals = Refusals(0.25, clock)
    refusals.answered("POST", CREATE, 503, REFUSED)
    before = _repeated()

    clock.now += 0.2
    with pytest.raises(Overloaded) as refused:
        refusals.check("POST", CREATE)
    assert refused.value.retry_after == 2
    assert _repeated() == before + 1
    refusals.check("GET", CREATE)  # another method of the route
    refusals.check("PUT", STATUS)  # another route of the upstream

    clock.now += 0.05
    refusals.check("POST", CREATE)  # the hold is over: forwarded again
    clock.now -= 0.1
    refusals.check("POST", CREATE)  # an ended hold is dropped, not kept to be read again
    assert _repeated() == before + 1


def test_a_later_refusal_holds_the_route_again(clock: Clock) -> None:
    refusals = Refusals(0.25, clock)
    refusals.answered("POST", CREATE, 503, REFUSED)
    clock.now += 0.3
    refusals.check("POST", CREATE)

    refusals.answered("POST", CREATE, 503, [(b"retry-after", b"5")])

    with pytest.raises(Overloaded) as refused:
        refusals.check("POST", CREATE)
    assert refused.value.retry_after == 5


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (201, [(b"retry-after", b"2")]),
        (429, [(b"retry-after", b"2")]),  # refuses one client, not the route
        (503, []),  # a failing upstream, not a refusal
        (503, [(b"retry-after", b"Wed, 21 Oct 2026 07:28:00 GMT")]),
        (500, [(b"retry-after", b"2")]),
    ],
)
def test_other_answers_are_not_repeated(
    clock: Clock, status: int, headers: list[tuple[bytes, bytes]]
) -> None:
    refusals = Refusals(0.25, clock)

    refusals.answered("POST", CREATE, status, headers)

    refusals.check("POST", CREATE)


def test_a_hold_of_zero_forwards_every_request(clock: Clock) -> None:
    refusals = Refusals(0.0, clock)

    refusals.answered("POST", CREATE, 503, REFUSED)

    refusals.check("POST", CREATE)
