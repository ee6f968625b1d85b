"""The reservation rule: every line of an order is reserved, or none is, with a reason per line."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from services.inventory.domain import (
    INACTIVE_PRODUCT,
    INSUFFICIENT_STOCK,
    INVALID_QUANTITY,
    UNKNOWN_PRODUCT,
    RequestedLine,
    StockLevel,
    decide_reservation,
    merge_lines,
    refusal_summary,
)
from services.kit.order_events import LineRefusal, OrderCreated, OrderLine

A = "00000000-0000-4000-8000-00000000000a"
B = "00000000-0000-4000-8000-00000000000b"
C = "00000000-0000-4000-8000-00000000000c"


def line(product_id: str, quantity: int) -> OrderLine:
    return OrderLine(
        product_id=product_id,
        sku="SKU",
        name="Thing",
        quantity=quantity,
        unit_price=Decimal("1.00"),
        line_total=Decimal(quantity),
    )


def test_every_line_in_stock_is_reserved() -> None:
    lines = [RequestedLine(A, 2), RequestedLine(B, 5)]
    stock = {A: StockLevel(available=2, active=True), B: StockLevel(available=9, active=True)}
    assert decide_reservation(lines, stock) == []


def test_one_short_line_refuses_the_order_and_names_that_line_only() -> None:
    lines = [RequestedLine(A, 1), RequestedLine(B, 5)]
    stock = {A: StockLevel(available=10, active=True), B: StockLevel(available=4, active=True)}
    assert decide_reservation(lines, stock) == [
        LineRefusal(product_id=B, requested=5, available=4, reason=INSUFFICIENT_STOCK)
    ]


def test_each_bad_line_gets_its_own_reason() -> None:
    lines = [RequestedLine(A, 1), RequestedLine(B, 1), RequestedLine(C, 3), RequestedLine("x", 1)]
    stock = {A: StockLevel(available=5, active=False), C: StockLevel(available=0, active=True)}
    refusals = decide_reservation(lines, stock)
    assert [(r.product_id, r.reason, r.available) for r in refusals] == [
        (A, INACTIVE_PRODUCT, 5),
        (B, UNKNOWN_PRODUCT, 0),
        (C, INSUFFICIENT_STOCK, 0),
        ("x", UNKNOWN_PRODUCT, 0),
    ]


def test_a_quantity_below_one_is_refused_even_with_stock() -> None:
    stock = {A: StockLevel(available=5, active=True)}
    refusals = decide_reservation([RequestedLine(A, 0)], stock)
    assert [r.reason for r in refusals] == [INVALID_QUANTITY]


def test_an_order_without_lines_is_refused() -> None:
    assert [r.reason for r in decide_reservation([], {})] == [INVALID_QUANTITY]


def test_lines_of_one_product_are_judged_together() -> None:
    lines = merge_lines([line(A, 3), line(A, 3)])
    assert lines == [RequestedLine(A, 6)]
    refusals = decide_reservation(lines, {A: StockLevel(available=5, active=True)})
    assert [(r.requested, r.reason) for r in refusals] == [(6, INSUFFICIENT_STOCK)]


def test_merged_lines_come_in_lock_order_with_canonical_ids() -> None:
    upper_b = B.upper()
    merged = merge_lines([line(C, 1), line(upper_b, 2), line(A, 1), line(B, 1)])
    assert merged == [RequestedLine(A, 1), RequestedLine(B, 3), RequestedLine(C, 1)]


def test_merge_keeps_ids_that_are_not_uuids() -> None:
    assert merge_lines([line("not-a-uuid", 1)]) == [RequestedLine("not-a-uuid", 1)]


def test_summary_names_the_count_and_the_reasons() -> None:
    refusals = [
        LineRefusal(product_id=A, requested=2, available=1, reason=INSUFFICIENT_STOCK),
        LineRefusal(product_id=B, requested=1, available=0, reason=UNKNOWN_PRODUCT),
    ]
    assert refusal_summary(refusals, 3) == (
        "2 of 3 lines refused: insufficient-stock, unknown-product"
    )


def test_an_order_created_event_merges_into_requested_lines() -> None:
    created = OrderCreated(
        order_id=str(uuid.uuid4()),
        user_id="u1",
        version=1,
        items=[line(B, 1), line(A, 2)],
        total=Decimal("3.00"),
        currency="USD",
        created_at=datetime.now(UTC),
    )
    assert merge_lines(created.items) == [RequestedLine(A, 2), RequestedLine(B, 1)]
