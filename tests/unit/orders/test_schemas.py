"""What a create or status request may contain."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from services.orders.domain import Status
from services.orders.schemas import CreateOrderRequest, StatusChangeRequest

P1, P2 = str(uuid.uuid4()), str(uuid.uuid4())
ADDRESS = {
    "name": "Ada",
    "line1": "1 Main St",
    "city": "Berlin",
    "postalCode": "10115",
    "country": "DE",
}


def body(**overrides: Any) -> dict[str, Any]:
    return {"items": [{"productId": P1, "quantity": 2}], "shippingAddress": ADDRESS, **overrides}


def errors(payload: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        CreateOrderRequest.model_validate(payload)
    return [".".join(str(p) for p in err["loc"]) for err in caught.value.errors()]


def test_a_valid_request() -> None:
    request = CreateOrderRequest.model_validate(body())
    assert request.quantities() == {P1: 2}
    assert request.shipping_address.country == "DE"
    assert request.shipping_address.line2 is None


def test_client_prices_and_totals_are_refused_by_name() -> None:
    assert errors(
        body(items=[{"productId": P1, "quantity": 1, "unitPrice": "0.01"}], total="0.01")
    ) == ["items.0.unitPrice", "total"]


@pytest.mark.parametrize("field", ["name", "line1", "line2", "city", "postalCode"])
def test_address_text_with_control_characters_is_refused(field: str) -> None:
    for bad in ("a\x00b", "a\nb"):
        payload = body()
        payload["shippingAddress"] = {**ADDRESS, field: bad}
        assert errors(payload) == [f"shippingAddress.{field}"]


def test_repeated_products_are_merged() -> None:
    request = CreateOrderRequest.model_validate(
        body(
            items=[
                {"productId": P1, "quantity": 2},
                {"productId": P2, "quantity": 1},
                {"productId": P1, "quantity": 3},
            ]
        )
    )
    assert request.quantities() == {P1: 5, P2: 1}


def test_merged_quantities_stay_within_the_limit() -> None:
    assert errors(
        body(items=[{"productId": P1, "quantity": 600}, {"productId": P1, "quantity": 401}])
    ) == [""]


@pytest.mark.parametrize("quantity", [0, -1, 1001, 2.5, "3", True])
def test_a_quantity_is_an_integer_from_1_to_1000(quantity: object) -> None:
    assert errors(body(items=[{"productId": P1, "quantity": quantity}])) == ["items.0.quantity"]


def test_an_order_has_1_to_50_lines() -> None:
    assert errors(body(items=[])) == ["items"]
    many = [{"productId": str(uuid.uuid4()), "quantity": 1} for _ in range(51)]
    assert errors(body(items=many)) == ["items"]
    CreateOrderRequest.model_validate(body(items=many[:50]))


def test_a_product_id_is_a_uuid() -> None:
    assert errors(body(items=[{"productId": "1,2", "quantity": 1}])) == ["items.0.productId"]


@pytest.mark.parametrize("country", ["de", " us ", "GB"])
def test_country_codes_are_normalised(country: str) -> None:
    request = CreateOrderRequest.model_validate(
        body(shippingAddress={**ADDRESS, "country": country})
    )
    assert request.shipping_address.country == country.strip().upper()


@pytest.mark.parametrize("country", ["XX", "DEU", "Germany", "", "UK"])
def test_unknown_country_codes_are_refused(country: str) -> None:
    assert errors(body(shippingAddress={**ADDRESS, "country": country})) == [
        "shippingAddress.country"
    ]


@pytest.mark.parametrize("field", ["name", "line1", "city", "postalCode", "country"])
def test_required_address_fields(field: str) -> None:
    address = {k: v for k, v in ADDRESS.items() if k != field}
    assert errors(body(shippingAddress=address)) == [f"shippingAddress.{field}"]


def test_blank_address_fields_are_refused() -> None:
    assert errors(body(shippingAddress={**ADDRESS, "name": "   "})) == ["shippingAddress.name"]


def test_a_blank_second_line_is_absent() -> None:
    request = CreateOrderRequest.model_validate(body(shippingAddress={**ADDRESS, "line2": "  "}))
    assert request.shipping_address.line2 is None


@pytest.mark.parametrize("status", ["SHIPPED", "DELIVERED", "CANCELLED"])
def test_admins_may_set_shipping_statuses(status: str) -> None:
    assert StatusChangeRequest.model_validate({"status": status}).status == Status(status)


@pytest.mark.parametrize("status", ["CONFIRMED", "FAILED", "CREATED", "LOST"])
def test_admins_may_not_set_other_statuses(status: str) -> None:
    with pytest.raises(ValidationError):
        StatusChangeRequest.model_validate({"status": status})


def test_expected_version_is_positive() -> None:
    with pytest.raises(ValidationError):
        StatusChangeRequest.model_validate({"status": "SHIPPED", "expectedVersion": 0})
    assert (
        StatusChangeRequest.model_validate(
            {"status": "SHIPPED", "expectedVersion": 2}
        ).expected_version
        == 2
    )
