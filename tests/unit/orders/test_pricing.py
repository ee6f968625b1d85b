"""Orders are priced from the catalogue alone."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.orders.domain import CatalogueProduct, merge_quantities, price_order
from services.orders.errors import CurrencyMismatch, ProductUnavailable, TotalTooLarge


def product(
    pid: str, price: str, currency: str = "EUR", *, active: bool = True
) -> CatalogueProduct:
    return CatalogueProduct(
        id=pid,
        sku=f"SKU-{pid}",
        name=f"Product {pid}",
        price=Decimal(price),
        currency=currency,
        active=active,
    )


CATALOGUE = {
    "a": product("a", "12.50"),
    "b": product("b", "0.99"),
    "c": product("c", "5", currency="USD"),
    "d": product("d", "3.00", active=False),
}


def test_lines_and_total_come_from_the_catalogue() -> None:
    priced = price_order({"a": 2, "b": 3}, CATALOGUE)
    assert priced.currency == "EUR"
    assert [
        (line.product_id, line.quantity, line.unit_price, line.line_total) for line in priced.lines
    ] == [
        ("a", 2, Decimal("12.50"), Decimal("25.00")),
        ("b", 3, Decimal("0.99"), Decimal("2.97")),
    ]
    assert priced.total == Decimal("27.97")
    assert priced.lines[0].sku == "SKU-a"
    assert priced.lines[0].name == "Product a"


def test_prices_are_kept_to_cents() -> None:
    priced = price_order({"c": 1}, CATALOGUE)
    assert str(priced.lines[0].unit_price) == "5.00"
    assert str(priced.total) == "5.00"


def test_unknown_and_inactive_products_are_named() -> None:
    with pytest.raises(ProductUnavailable) as caught:
        price_order({"a": 1, "zzz": 1, "d": 2}, CATALOGUE)
    error = caught.value
    assert error.status == 422
    assert error.extra == {"unknownProducts": ["zzz"], "inactiveProducts": ["d"]}
    assert "zzz" in error.detail
    assert "d" in error.detail


def test_one_order_has_one_currency() -> None:
    with pytest.raises(CurrencyMismatch) as caught:
        price_order({"a": 1, "c": 1}, CATALOGUE)
    assert caught.value.status == 422
    assert caught.value.extra == {"currencies": ["EUR", "USD"]}


def test_a_total_beyond_what_an_order_holds_is_refused() -> None:
    catalogue = {"big": product("big", "99999999.99")}
    assert price_order({"big": 100}, catalogue).total == Decimal("9999999999.00")
    with pytest.raises(TotalTooLarge) as caught:
        price_order({"big": 101}, catalogue)
    assert caught.value.status == 422


def test_repeated_products_are_merged_in_first_seen_order() -> None:
    assert merge_quantities([("b", 1), ("a", 2), ("b", 4)]) == {"b": 5, "a": 2}
    assert list(merge_quantities([("b", 1), ("a", 2), ("b", 4)])) == ["b", "a"]
