"""A listing's WHERE holds only the filters whose values are given."""

from __future__ import annotations

from services.kit.db import Filters


def test_only_the_conditions_whose_values_are_given_are_kept_with_their_parameters() -> None:
    filters = Filters({"limit": 20})
    filters.add("status = %(status)s", status="dead")
    filters.add("channel = %(channel)s", channel=None)
    filters.add("(created_at, id) < (%(at)s, %(id)s)", at="2026-12-03", id=None)

    assert filters.where == "status = %(status)s"
    assert filters.params == {"limit": 20, "status": "dead"}


def test_no_filter_given_matches_every_row() -> None:
    filters = Filters({"limit": 20})
    filters.add("status = %(status)s", status=None)

    assert filters.where == "true"
    assert filters.params == {"limit": 20}
