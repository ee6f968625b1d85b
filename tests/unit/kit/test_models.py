"""The shared body base: camelCase on the wire, snake_case in Python, rows mapped by attribute."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import ConfigDict, ValidationError

from services.kit.models import CamelModel, row_fields


class Body(CamelModel):
    product_id: str
    unit_count: int = 0


@dataclass(frozen=True)
class Row:
    product_id: str
    unit_count: int
    not_in_the_schema: str


def test_fields_are_read_by_alias_or_by_name_and_written_by_alias() -> None:
    by_alias = Body.model_validate({"productId": "p", "unitCount": 2})
    by_name = Body.model_validate({"product_id": "p", "unit_count": 2})
    assert by_alias == by_name
    assert by_alias.model_dump(by_alias=True) == {"productId": "p", "unitCount": 2}


def test_unknown_fields_are_ignored() -> None:
    assert Body.model_validate({"productId": "p", "price": "1.00"}) == Body(product_id="p")


def test_a_row_maps_itself_by_attribute() -> None:
    assert Body.model_validate(Row("p", 3, "x")) == Body(product_id="p", unit_count=3)


def test_a_service_may_refuse_unknown_fields() -> None:
    class Strict(Body):
        model_config = ConfigDict(extra="forbid")

    with pytest.raises(ValidationError):
        Strict.model_validate({"productId": "p", "price": "1.00"})
    assert Strict.model_validate({"productId": "p"}).model_dump(by_alias=True) == {
        "productId": "p",
        "unitCount": 0,
    }


@dataclass(frozen=True)
class RowWithAddress:
    product_id: str
    address: dict[str, str]


def test_row_fields_are_the_rows_values_themselves_not_copies() -> None:
    address = {"city": "Berlin"}
    fields = row_fields(RowWithAddress("p-1", address))
    assert fields == {"product_id": "p-1", "address": {"city": "Berlin"}}
    assert fields["address"] is address
    assert row_fields(Row("p-2", 3, "x")) == {
        "product_id": "p-2",
        "unit_count": 3,
        "not_in_the_schema": "x",
    }
