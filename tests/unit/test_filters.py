"""Filter language: parser errors with positions, filterValues format, evaluation rules."""

from __future__ import annotations

import numpy as np
import pytest

from local_personalize.data import Column, Dataset, Interactions, Table
from local_personalize.errors import InvalidInputException
from local_personalize.filters import (
    BoolOp,
    CompiledFilter,
    FilterSyntaxError,
    Membership,
    Param,
    parse_filter,
    parse_filter_value,
)


@pytest.fixture(scope="module")
def shop() -> Dataset:
    """Five items, two users; user-1 viewed item 0 and 1 and purchased item 1."""
    items = Table.build(
        "ITEM_ID",
        ["i0", "i1", "i2", "i3", "i4"],
        [
            Column.categorical("CATEGORY", ["shoes", "bags", "shoes", "Shoes", "toys"]),
            Column.numeric("PRICE", np.array([10.0, 50.0, 99.99, 20.0, 5.0])),
            Column.text("TITLE", ["a", "b", "c", "d", "e"]),
        ],
    )
    users = Table.build("USER_ID", ["user-1", "user-2"], [])
    interactions = Interactions.build(
        ["user-1", "user-2"],
        np.array([0, 0, 0, 1], dtype=np.int32),
        np.array([0, 1, 1, 4], dtype=np.int32),
        np.array([1, 2, 3, 1], dtype=np.int64),
        np.array([0, 0, 2, 0], dtype=np.int8),
        ("View", "AddToCart", "Purchase"),
    )
    return Dataset(items, users, interactions)


def allowed(shop: Dataset, expr: str, values: dict[str, str], user: int | None = 0) -> list[str]:
    mask = CompiledFilter("arn:test", expr, shop).allowed(user, values)
    return [shop.items.ids[i] for i in np.flatnonzero(mask)]


def test_parses_params_in_lists_and_boolean_structure() -> None:
    expr = parse_filter(
        'INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY, "toys") AND Items.PRICE < 50 '
        "OR Items.PRICE >= $MIN"
    )
    cond = expr.parts[0].condition
    assert isinstance(cond, BoolOp)
    assert cond.op == "OR"
    first = cond.operands[0]
    assert isinstance(first, BoolOp)
    assert first.op == "AND"
    membership = first.operands[0]
    assert isinstance(membership, Membership)
    assert isinstance(membership.values[0], Param)
    assert membership.values[0].name == "CATEGORY"


@pytest.mark.parametrize(
    ("expr", "position"),
    [
        ("", 0),
        ("INCLUDE ItemID WHERE Items.CATEGORY IN (", 40),
        ('INCLUDE ItemID WHEN Items.CATEGORY IN ("a")', 15),
        ("INCLUDE ItemID WHERE Items.CATEGORY IN ('a')", 40),
        ('INCLUDE ItemID WHERE Items.CATEGORY IN ("a") AND', 48),
        ('INCLUDE ItemID WHERE Items.CATEGORY IN ("a', 40),
        ("INCLUDE ItemID WHERE Items.CATEGORY NOT IN ($CATS)", 44),
        ('KEEP ItemID WHERE Items.CATEGORY IN ("a")', 0),
        ('INCLUDE ItemID WHERE Stuff.CATEGORY IN ("a")', 21),
        ('INCLUDE ItemID WHERE CurrentItem.CATEGORY IN ("a")', 21),
        ('INCLUDE ItemID WHERE Items.CATEGORY IN ("a") extra', 45),
        ("INCLUDE ItemID WHERE Items.PRICE ~ 3", 33),
    ],
)
def test_syntax_errors_carry_the_position(expr: str, position: int) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(expr)
    assert info.value.position == position
    assert f"at position {position}" in str(info.value)


@pytest.mark.parametrize(
    ("expr", "position"),
    [
        ('INCLUDE ItemID WHERE Items.COLOUR IN ("red")', 21),
        ('INCLUDE ItemID WHERE Items.TITLE IN ("a")', 21),
        ("INCLUDE ItemID WHERE Items.CATEGORY > 3", 21),
        ('INCLUDE ItemID WHERE Items.PRICE < "cheap"', 35),
        ('EXCLUDE ItemID WHERE Interactions.ITEM_ID IN ("x")', 21),
    ],
)
def test_binding_rejects_fields_the_dataset_cannot_filter(
    shop: Dataset, expr: str, position: int
) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        CompiledFilter("arn:test", expr, shop)
    assert info.value.position == position


def test_filter_value_format() -> None:
    assert parse_filter_value("C", '"shoes","bags"') == ["shoes", "bags"]
    assert parse_filter_value("C", ' "a, b" , "c" ') == ["a, b", "c"]
    assert parse_filter_value("C", r'"say \"hi\""') == ['say "hi"']
    assert parse_filter_value("P", "50") == ["50"]
    for bad in ['"open', '"a" "b"', "", '"a",']:
        with pytest.raises(InvalidInputException):
            parse_filter_value("C", bad)


def test_include_by_category_is_case_sensitive(shop: Dataset) -> None:
    expr = "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)"
    assert allowed(shop, expr, {"CATEGORY": '"shoes"'}) == ["i0", "i2"]
    assert allowed(shop, expr, {"CATEGORY": '"shoes","toys"'}) == ["i0", "i2", "i4"]
    assert allowed(shop, expr, {"CATEGORY": '"unknown"'}) == []


def test_include_needs_every_parameter(shop: Dataset) -> None:
    with pytest.raises(InvalidInputException, match="CATEGORY"):
        allowed(shop, "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)", {})


def test_exclude_skips_a_clause_whose_parameter_is_missing(shop: Dataset) -> None:
    expr = 'EXCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY) OR Items.CATEGORY IN ("toys")'
    assert allowed(shop, expr, {}) == ["i0", "i1", "i2", "i3"]
    assert allowed(shop, expr, {"CATEGORY": '"shoes"'}) == ["i1", "i3"]
    only_param = "EXCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)"
    assert allowed(shop, only_param, {}) == ["i0", "i1", "i2", "i3", "i4"]


def test_numeric_comparisons(shop: Dataset) -> None:
    assert allowed(shop, "INCLUDE ItemID WHERE Items.PRICE <= $MAX", {"MAX": '"20"'}) == [
        "i0",
        "i3",
        "i4",
    ]
    assert allowed(shop, "INCLUDE ItemID WHERE Items.PRICE > 49.5", {}) == ["i1", "i2"]
    assert allowed(shop, "INCLUDE ItemID WHERE Items.PRICE != 5", {}) == ["i0", "i1", "i2", "i3"]
    with pytest.raises(InvalidInputException):
        allowed(shop, "INCLUDE ItemID WHERE Items.PRICE <= $MAX", {"MAX": '"cheap"'})
    with pytest.raises(InvalidInputException):
        allowed(shop, "INCLUDE ItemID WHERE Items.PRICE <= $MAX", {"MAX": '"1","2"'})


def test_and_or_parentheses_and_not_in(shop: Dataset) -> None:
    expr = (
        'INCLUDE ItemID WHERE (Items.CATEGORY IN ("shoes") OR Items.CATEGORY IN ("toys")) '
        "AND Items.PRICE < 50"
    )
    assert allowed(shop, expr, {}) == ["i0", "i4"]
    assert allowed(shop, 'INCLUDE ItemID WHERE Items.CATEGORY NOT IN ("shoes", "bags")', {}) == [
        "i3",
        "i4",
    ]


def test_interactions_event_type_is_per_user_and_case_insensitive(shop: Dataset) -> None:
    expr = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")'
    assert allowed(shop, expr, {}, user=0) == ["i0", "i2", "i3", "i4"]
    assert allowed(shop, expr, {}, user=1) == ["i0", "i1", "i2", "i3", "i4"]
    assert allowed(shop, expr, {}, user=None) == ["i0", "i1", "i2", "i3", "i4"]
    star = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")'
    assert allowed(shop, star, {}, user=0) == ["i2", "i3", "i4"]


def test_parts_combine_with_pipe(shop: Dataset) -> None:
    expr = (
        'INCLUDE ItemID WHERE Items.CATEGORY IN ("shoes") | '
        'INCLUDE ItemID WHERE Items.CATEGORY IN ("toys") | '
        "EXCLUDE ItemID WHERE Items.PRICE > 50"
    )
    assert allowed(shop, expr, {}) == ["i0", "i4"]
