"""List queries are normalised, so equal questions share one cache entry and others do not."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.inventory.cache import cache_key
from services.inventory.domain import ProductQuery, decode_cursor, encode_cursor
from services.inventory.schemas import MAX_IDS, product_query
from services.kit.errors import InvalidInput

A = "00000000-0000-4000-8000-00000000000a"
B = "00000000-0000-4000-8000-00000000000b"


def test_spelling_differences_share_a_key() -> None:
    first = product_query(q="  Camping   MUG ", currency="usd", min_price=Decimal("10"))
    second = product_query(q="camping mug", currency="USD", min_price=Decimal("10.00"))
    assert first == second
    assert cache_key(first) == cache_key(second)


def test_id_lists_are_sorted_deduplicated_and_lowercased() -> None:
    first = product_query(ids=f"{B},{A.upper()}, {A}")
    second = product_query(ids=f"{A},{B}")
    assert first.ids == (A, B)
    assert cache_key(first) == cache_key(second)


@pytest.mark.parametrize(
    "other",
    [
        {"q": "mugs"},
        {"currency": "EUR"},
        {"min_price": Decimal("10.01")},
        {"max_price": Decimal("10")},
        {"limit": 21},
        {"active": False},
        {"cursor": encode_cursor("Mug", A)},
        {"ids": A},
    ],
)
def test_different_questions_get_different_keys(other: dict[str, object]) -> None:
    base: dict[str, object] = {"q": "mug", "currency": "USD", "min_price": Decimal("10")}
    assert cache_key(product_query(**base)) != cache_key(product_query(**(base | other)))  # type: ignore[arg-type]


def test_the_public_sees_active_products_only() -> None:
    assert product_query().active is True
    assert product_query().active_only
    assert product_query(active=False).active_only
    assert product_query(is_admin=True).active is None
    assert not product_query(is_admin=True, active=False).active_only
    assert cache_key(product_query()) != cache_key(product_query(is_admin=True))


@pytest.mark.parametrize("params", [{"active": False}, {"active": True}, {"ids": A}])
def test_the_admin_view_and_the_public_view_never_share_a_key(params: dict[str, object]) -> None:
    public = product_query(**params)  # type: ignore[arg-type]
    admin = product_query(**params, is_admin=True)  # type: ignore[arg-type]
    assert cache_key(public) != cache_key(admin)


def test_a_batch_lookup_returns_inactive_products_too_and_has_no_page() -> None:
    query = product_query(ids=A, limit=5)
    assert query == ProductQuery(active=None, limit=0, ids=(A,))
    assert not query.active_only


def test_bad_ids_are_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        product_query(ids=f"{A},nope")
    assert refused.value.extra["errors"][0]["field"] == "ids"
    with pytest.raises(InvalidInput):
        product_query(ids=" , ")


def test_at_most_a_hundred_ids() -> None:
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(MAX_IDS + 1)]
    assert len(product_query(ids=",".join(ids[:MAX_IDS])).ids or ()) == MAX_IDS
    with pytest.raises(InvalidInput):
        product_query(ids=",".join(ids))


def test_cursor_round_trip_and_forgeries() -> None:
    assert decode_cursor(encode_cursor("Mug, blue", A)) == ("Mug, blue", A)
    for forged in ("!!!", "e30", encode_cursor("x", "not-a-uuid")):
        with pytest.raises(InvalidInput) as refused:
            product_query(cursor=forged)
        assert (refused.value.status, refused.value.code) == (422, "invalid-input")
        assert refused.value.extra["errors"] == [
            {
                "field": "cursor",
                "message": "cursor is not a cursor this service returned",
                "type": "value_error",
            }
        ]


def test_price_bounds_must_be_in_order() -> None:
    with pytest.raises(InvalidInput):
        product_query(min_price=Decimal("5"), max_price=Decimal("4.99"))
