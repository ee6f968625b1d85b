"""Per-user holding limits: no account can reserve a product's whole stock."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.orders import repository
from services.orders.domain import (
    OPEN_STATUSES,
    HoldingLimits,
    Holdings,
    admit_within_limits,
    check_holding_limits,
)
from services.orders.errors import HoldingLimitReached
from services.orders.settings import Settings
from tests.signing import token_env

LIMITS = HoldingLimits(open_orders=3, units_per_product=10)


def test_within_the_limits_an_order_passes() -> None:
    check_holding_limits(LIMITS, open_orders=2, held_units={"p": 4}, requested={"p": 6, "q": 10})


def test_one_open_order_too_many_is_refused() -> None:
    with pytest.raises(HoldingLimitReached) as raised:
        check_holding_limits(LIMITS, open_orders=3, held_units={}, requested={"p": 1})
    assert raised.value.status == 409
    assert "3 open orders" in raised.value.detail


def test_units_of_a_product_past_the_limit_are_refused_naming_it() -> None:
    with pytest.raises(HoldingLimitReached) as raised:
        check_holding_limits(LIMITS, open_orders=0, held_units={"p": 8}, requested={"p": 3, "q": 1})
    assert raised.value.extra["products"] == ["p"]
    assert "at most 10 units" in raised.value.detail


def test_no_limits_allow_anything() -> None:
    check_holding_limits(
        HoldingLimits(), open_orders=10**6, held_units={"p": 10**6}, requested={"p": 1000}
    )


def test_creates_placed_together_each_count_toward_the_next_of_their_user() -> None:
    held = {"ann": Holdings(open_orders=1, units={"p": 4}), "bob": Holdings(2, {"p": 9})}
    outcomes = admit_within_limits(
        LIMITS,
        [
            ("ann", {"p": 6}),  # 10 units: admitted
            ("ann", {"p": 1}),  # 11: refused, and not counted
            ("bob", {"q": 10}),  # bob's third open order: admitted
            ("ann", {"q": 2}),  # ann's third: admitted
            ("bob", {"q": 1}),  # bob's fourth: refused
            ("ann", {"q": 1}),  # ann's fourth: refused
            ("cyd", {"p": 10}),  # holds nothing yet: admitted
        ],
        held,
    )
    assert [outcome is None for outcome in outcomes] == [
        True,
        False,
        True,
        True,
        False,
        False,
        True,
    ]
    refused = [outcome for outcome in outcomes if outcome is not None]
    assert refused[0].extra["products"] == ["p"]
    assert ["3 open orders" in refusal.detail for refusal in refused] == [False, True, True]
    assert held["ann"] == Holdings(open_orders=1, units={"p": 4}), "what was read is not changed"


def test_a_group_checked_without_limits_admits_all() -> None:
    outcomes = admit_within_limits(HoldingLimits(), [("ann", {"p": 10**6})] * 3, {})
    assert outcomes == [None, None, None]


def test_limits_are_on_by_default_in_production_and_0_turns_them_off() -> None:
    assert Settings(APP_ENV="development").holding_limits == HoldingLimits()
    assert Settings(APP_ENV="test", **token_env()).holding_limits == HoldingLimits()
    production = Settings(APP_ENV="production", **token_env())
    assert production.holding_limits == HoldingLimits(open_orders=20, units_per_product=100)
    configured = Settings(
        APP_ENV="test",
        **token_env(),
        MAX_OPEN_ORDERS_PER_USER=0,
        MAX_OPEN_UNITS_PER_PRODUCT=5,
    )
    assert configured.holding_limits == HoldingLimits(open_orders=None, units_per_product=5)
    local = Settings(APP_ENV="development", MAX_OPEN_ORDERS_PER_USER=7)
    assert local.holding_limits.open_orders == 7


def test_the_open_statuses_of_the_queries_are_those_of_the_partial_index() -> None:
    migration = Path(repository.__file__).parent / "migrations" / "0002_open_orders.sql"
    assert f"WHERE status IN {repository._OPEN};" in migration.read_text()
    assert {f"'{status}'" for status in OPEN_STATUSES} == set(repository._OPEN[1:-1].split(", "))
