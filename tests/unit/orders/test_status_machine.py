"""The order status machine: one table decides every move and who may make it."""

from __future__ import annotations

import pytest

from services.orders.domain import (
    ADMIN_SETTABLE,
    FINAL_STATUSES,
    TRANSITIONS,
    Actor,
    Status,
    allowed_next,
    can_transition,
    check_transition,
)
from services.orders.errors import IllegalTransition

S, A = Status, Actor

# Every legal (from, to, actor); anything not listed here must be refused.
LEGAL = {
    (S.CREATED, S.CONFIRMED, A.INVENTORY),
    (S.CREATED, S.FAILED, A.INVENTORY),
    (S.CREATED, S.CANCELLED, A.OWNER),
    (S.CREATED, S.CANCELLED, A.ADMIN),
    (S.CREATED, S.CANCELLED, A.INVENTORY),
    (S.CONFIRMED, S.SHIPPED, A.ADMIN),
    (S.CONFIRMED, S.CANCELLED, A.OWNER),
    (S.CONFIRMED, S.CANCELLED, A.ADMIN),
    (S.CONFIRMED, S.CANCELLED, A.INVENTORY),
    (S.SHIPPED, S.DELIVERED, A.ADMIN),
}
EVERY_MOVE = [(a, b, actor) for a in Status for b in Status for actor in Actor]


@pytest.mark.parametrize(("current", "target", "actor"), EVERY_MOVE)
def test_only_the_listed_moves_are_legal(current: Status, target: Status, actor: Actor) -> None:
    legal = (current, target, actor) in LEGAL
    assert can_transition(current, target, actor) is legal
    if legal:
        check_transition(current, target, actor)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(current, target, actor)


def test_the_table_covers_every_status() -> None:
    assert set(TRANSITIONS) == set(Status)


def test_final_statuses_allow_nothing() -> None:
    assert {S.DELIVERED, S.FAILED, S.CANCELLED} == FINAL_STATUSES
    for status in FINAL_STATUSES:
        for actor in Actor:
            assert allowed_next(status, actor) == []


def test_admins_cannot_set_what_inventory_decides() -> None:
    assert {S.SHIPPED, S.DELIVERED, S.CANCELLED} == ADMIN_SETTABLE


@pytest.mark.parametrize(
    ("current", "actor", "expected"),
    [
        (S.CREATED, A.INVENTORY, [S.CONFIRMED, S.FAILED, S.CANCELLED]),
        (S.CREATED, A.ADMIN, [S.CANCELLED]),
        (S.CREATED, A.OWNER, [S.CANCELLED]),
        (S.CONFIRMED, A.ADMIN, [S.SHIPPED, S.CANCELLED]),
        (S.CONFIRMED, A.OWNER, [S.CANCELLED]),
        (S.SHIPPED, A.ADMIN, [S.DELIVERED]),
        (S.SHIPPED, A.OWNER, []),
    ],
)
def test_allowed_next_per_actor(current: Status, actor: Actor, expected: list[Status]) -> None:
    assert allowed_next(current, actor) == expected


def test_an_illegal_move_names_the_allowed_ones() -> None:
    with pytest.raises(IllegalTransition) as caught:
        check_transition(S.CONFIRMED, S.DELIVERED, A.ADMIN)
    error = caught.value
    assert error.status == 409
    assert error.extra == {
        "current": "CONFIRMED",
        "requested": "DELIVERED",
        "allowed": ["SHIPPED", "CANCELLED"],
    }
    assert "allowed: SHIPPED, CANCELLED" in error.detail


def test_a_move_from_a_final_status_says_none_is_allowed() -> None:
    with pytest.raises(IllegalTransition) as caught:
        check_transition(S.DELIVERED, S.CANCELLED, A.OWNER)
    assert caught.value.extra["allowed"] == []
    assert caught.value.detail.endswith("allowed: none.")
