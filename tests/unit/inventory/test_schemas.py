"""Request bodies: what the admin API accepts and how it normalises it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from services.inventory.endpoints import _expected_version
from services.inventory.schemas import ProductCreate, ProductPatch, StockSet
from services.kit.errors import InvalidInput

VALID: dict[str, Any] = {
    "sku": "TEE-M",
    "name": "T-shirt",
    "price": "19.99",
    "currency": "usd",
    "initialStock": 5,
}


def test_a_valid_product_is_normalised() -> None:
    product = ProductCreate.model_validate(VALID | {"imageUrl": " https://img.example/t.png "})
    assert product.currency == "USD"
    assert product.price == Decimal("19.99")
    assert product.image_url == "https://img.example/t.png"
    assert product.description == ""


def test_initial_stock_defaults_to_zero() -> None:
    body = {k: v for k, v in VALID.items() if k != "initialStock"}
    assert ProductCreate.model_validate(body).initial_stock == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sku", "has space"),
        ("sku", ""),
        ("sku", "x" * 65),
        ("name", "   "),
        ("price", "-1"),
        ("price", "1.999"),
        ("price", "10000000000.00"),
        ("currency", "US"),
        ("currency", "U$D"),
        ("imageUrl", "javascript:alert(1)"),
        ("initialStock", -1),
        ("role", "ADMIN"),
    ],
)
def test_bad_product_fields_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        ProductCreate.model_validate(VALID | {field: value})


def test_a_patch_changes_only_what_it_names() -> None:
    patch = ProductPatch.model_validate({"price": "5", "imageUrl": None, "version": 3})
    assert patch.changes() == {"price": Decimal("5"), "image_url": None}
    assert patch.version == 3
    assert ProductPatch.model_validate({}).changes() == {}


@pytest.mark.parametrize("field", ["name", "sku", "price", "currency", "active", "description"])
def test_a_patch_cannot_null_a_required_field(field: str) -> None:
    with pytest.raises(ValidationError, match="cannot be null"):
        ProductPatch.model_validate({field: None})


def test_stock_needs_a_reason_and_a_count_of_zero_or_more() -> None:
    assert StockSet.model_validate({"onHand": 0, "reason": " count "}).reason == "count"
    for bad in ({"onHand": -1, "reason": "x"}, {"onHand": 1, "reason": " "}, {"onHand": 1}):
        with pytest.raises(ValidationError):
            StockSet.model_validate(bad)


@pytest.mark.parametrize(
    ("header", "version"), [(None, None), ("*", None), ('"3"', 3), ('W/"12"', 12), ("7", 7)]
)
def test_if_match_names_a_version(header: str | None, version: int | None) -> None:
    assert _expected_version(header) == version


def test_if_match_that_is_not_a_version_is_refused() -> None:
    with pytest.raises(InvalidInput):
        _expected_version('"abc"')


@pytest.mark.parametrize("header", ['"²"', '"٣"', '"99999999999"', '"1 2"', '"-1"'])
def test_if_match_takes_ascii_digits_within_a_version_only(header: str) -> None:
    with pytest.raises(InvalidInput):
        _expected_version(header)
