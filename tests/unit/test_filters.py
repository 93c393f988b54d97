"""Filter language: parser errors with positions, filterValues format, evaluation rules."""

from __future__ import annotations

import numpy as np
import pytest

from local_personalize import ARN_PREFIX, Engine
from local_personalize.data import Column, Dataset, Interactions, Table
from local_personalize.errors import InvalidInputException
from local_personalize.filters import (
    BoolOp,
    CompiledFilter,
    FilterSyntaxError,
    Membership,
    Param,
    filter_parameters,
    parse_filter,
    parse_filter_value,
)
from local_personalize.resources import DEMO_RESOURCES, FilterDefinition, Resources


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
            Column.categorical("TAGS", ["red|sale", "blue", "red", "sale|blue", ""]),
        ],
    )
    users = Table.build(
        "USER_ID",
        ["user-1", "user-2"],
        [
            Column.categorical("TIER", ["gold|vip", "basic"]),
            Column.numeric("AGE", np.array([30.0, 15.0]), integer=True),
        ],
    )
    interactions = Interactions.build(
        ["user-1", "user-2"],
        np.array([0, 0, 0, 1], dtype=np.int32),
        np.array([0, 1, 1, 4], dtype=np.int32),
        np.array([1, 2, 3, 1], dtype=np.int64),
        np.array([0, 0, 2, 0], dtype=np.int8),
        ("View", "AddToCart", "Purchase"),
    )
    return Dataset(items, users, interactions)


def allowed(
    shop: Dataset,
    expr: str,
    values: dict[str, str],
    user: int | None = 0,
    item_id: str | None = None,
) -> list[str]:
    mask = CompiledFilter("arn:test", expr, shop).allowed(user, values, item_id=item_id)
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


ALL = ["i0", "i1", "i2", "i3", "i4"]


def test_multi_valued_categoricals_match_any_listed_value(shop: Dataset) -> None:
    expr = "INCLUDE ItemID WHERE Items.TAGS IN ($TAGS)"
    assert allowed(shop, expr, {"TAGS": '"sale"'}) == ["i0", "i3"]
    assert allowed(shop, expr, {"TAGS": '"blue","red"'}) == ["i0", "i1", "i2", "i3"]
    # The joined string is not itself a value.
    assert allowed(shop, expr, {"TAGS": '"red|sale"'}) == []
    assert allowed(shop, 'INCLUDE ItemID WHERE Items.TAGS NOT IN ("sale")', {}) == [
        "i1",
        "i2",
        "i4",
    ]
    assert allowed(shop, 'INCLUDE ItemID WHERE Items.TAGS = "blue"', {}) == ["i1", "i3"]
    assert allowed(shop, 'INCLUDE ItemID WHERE Items.TAGS != "blue"', {}) == ["i0", "i2", "i4"]


def test_current_item_categorical_and_numeric(shop: Dataset) -> None:
    same = "EXCLUDE ItemID WHERE Items.CATEGORY IN (CurrentItem.CATEGORY)"
    assert allowed(shop, same, {}, item_id="i0") == ["i1", "i3", "i4"]
    # Multi-valued: any shared tag counts.
    shared = "INCLUDE ItemID WHERE Items.TAGS IN (CurrentItem.TAGS)"
    assert allowed(shop, shared, {}, item_id="i0") == ["i0", "i2", "i3"]
    cheaper = "INCLUDE ItemID WHERE Items.PRICE < CurrentItem.PRICE"
    assert allowed(shop, cheaper, {}, item_id="i3") == ["i0", "i4"]
    assert allowed(
        shop, "INCLUDE ItemID WHERE Items.PRICE IN (CurrentItem.PRICE)", {}, None, "i1"
    ) == ["i1"]
    # An itemId the Items dataset lacks has no values: it matches nothing.
    assert allowed(shop, same, {}, item_id="cold") == ALL
    assert allowed(shop, cheaper, {}, item_id="cold") == []
    with pytest.raises(InvalidInputException, match=r"CurrentItem.*itemId"):
        allowed(shop, same, {})


def test_if_current_user_applies_a_clause_to_matching_users_only(shop: Dataset) -> None:
    expr = "EXCLUDE ItemID WHERE Items.PRICE > 20 IF CurrentUser.AGE < 18"
    assert allowed(shop, expr, {}, user=0) == ALL
    assert allowed(shop, expr, {}, user=1) == ["i0", "i3", "i4"]
    assert allowed(shop, expr, {}, user=None) == ALL
    tier = 'INCLUDE ItemID WHERE Items.CATEGORY IN ("toys") IF CurrentUser.TIER IN ("vip")'
    assert allowed(shop, tier, {}, user=0) == ["i4"]
    # A skipped INCLUDE clause restricts nothing.
    assert allowed(shop, tier, {}, user=1) == ALL
    eq = 'INCLUDE ItemID WHERE Items.CATEGORY IN ("toys") IF CurrentUser.TIER = "basic"'
    assert allowed(shop, eq, {}, user=1) == ["i4"]
    param = "EXCLUDE ItemID WHERE Items.PRICE > 20 IF CurrentUser.AGE < $AGE"
    assert allowed(shop, param, {}, user=1) == ALL  # omitted EXCLUDE value: skipped
    assert allowed(shop, param, {"AGE": "40"}, user=0) == ["i0", "i3", "i4"]
    mixed = (
        'INCLUDE ItemID WHERE Items.CATEGORY IN ("shoes") IF CurrentUser.TIER IN ("vip") | '
        'INCLUDE ItemID WHERE Items.CATEGORY IN ("bags") IF CurrentUser.TIER IN ("basic")'
    )
    assert allowed(shop, mixed, {}, user=0) == ["i0", "i2"]
    assert allowed(shop, mixed, {}, user=1) == ["i1"]


def test_pipe_rules_for_include_and_exclude_combinations(shop: Dataset) -> None:
    inc_inc = (
        'INCLUDE ItemID WHERE Items.CATEGORY IN ("bags") | INCLUDE ItemID WHERE Items.PRICE < 6'
    )
    assert allowed(shop, inc_inc, {}) == ["i1", "i4"]
    exc_exc = (
        'EXCLUDE ItemID WHERE Items.CATEGORY IN ("shoes") | '
        'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("View")'
    )
    assert allowed(shop, exc_exc, {}, user=0) == ["i3", "i4"]
    inc_exc = (
        "INCLUDE ItemID WHERE Items.PRICE < 60 | "
        'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")'
    )
    assert allowed(shop, inc_exc, {}, user=0) == ["i3", "i4"]


@pytest.mark.parametrize(
    ("expr", "position", "message"),
    [
        (
            'INCLUDE ItemID WHERE Items.PRICE < 5 AND Interactions.EVENT_TYPE IN ("View")',
            41,
            "cannot combine Items and Interactions",
        ),
        (
            "INCLUDE ItemID WHERE Items.PRICE < 5 IF CurrentUser.AGE > 3 AND CurrentUser.AGE < 9",
            60,
            "single IF",
        ),
        ("IF CurrentUser.AGE > 3", 0, "end of a clause"),
        ("INCLUDE ItemID WHERE Users.AGE > 3", 21, "IF CurrentUser"),
        ("INCLUDE ItemID WHERE Items.PRICE < 5 IF Items.PRICE > 3", 40, "CurrentUser field"),
        ("INCLUDE ItemID WHERE Items.X IN (CurrentItem)", 44, "expected '.'"),
    ],
)
def test_grammar_errors_are_readable(expr: str, position: int, message: str) -> None:
    with pytest.raises(FilterSyntaxError, match=message) as info:
        parse_filter(expr)
    assert info.value.position == position


@pytest.mark.parametrize(
    ("expr", "position"),
    [
        ("INCLUDE ItemID WHERE Items.PRICE < CurrentItem.CATEGORY", 35),
        ("INCLUDE ItemID WHERE Items.CATEGORY IN (CurrentItem.NOPE)", 40),
        ("EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (CurrentItem.CATEGORY)", 49),
        ('INCLUDE ItemID WHERE Items.PRICE < 5 IF CurrentUser.NOPE IN ("a")', 40),
        ("INCLUDE ItemID WHERE Items.CATEGORY = $C", 21),
        ("INCLUDE ItemID WHERE Items.CATEGORY IN ($C) | INCLUDE ItemID WHERE Items.PRICE < $C", 81),
    ],
)
def test_binding_errors_for_the_extended_grammar(shop: Dataset, expr: str, position: int) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        CompiledFilter("arn:test", expr, shop)
    assert info.value.position == position


def test_filter_parameters_types_each_placeholder() -> None:
    expr = (
        'INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY, "toys") AND Items.PRICE <= $MAX | '
        "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ($EVENTS) IF CurrentUser.AGE >= $AGE"
    )
    assert filter_parameters(expr) == {
        "CATEGORY": "strings",
        "MAX": "number",
        "EVENTS": "strings",
        "AGE": "number",
    }
    assert filter_parameters('INCLUDE ItemID WHERE Items.CATEGORY IN ("a")') == {}
    with pytest.raises(FilterSyntaxError, match="both"):
        filter_parameters("INCLUDE ItemID WHERE Items.A IN ($X) AND Items.B > $X")
    with pytest.raises(FilterSyntaxError):
        filter_parameters("INCLUDE ItemID WHERE")


def test_engine_passes_the_current_item_and_user_to_filters(engine: Engine) -> None:
    same = FilterDefinition(
        "other-categories", "EXCLUDE ItemID WHERE Items.CATEGORY IN (CurrentItem.CATEGORY)"
    )
    by_country = FilterDefinition(
        "cheap-in-gb",
        'INCLUDE ItemID WHERE Items.PRICE < 20 IF CurrentUser.COUNTRY IN ("GB")',
    )
    local = Engine(engine.dataset, Resources(DEMO_RESOURCES.deployments, (same, by_country)))
    items = engine.dataset.items
    category = items.columns["CATEGORY"].strings
    answer = local.get_recommendations(
        {
            "campaignArn": f"{ARN_PREFIX}campaign/sims",
            "itemId": "item-0001",
            "numResults": 20,
            "filterArn": same.arn,
        }
    )
    own = category[items.index["item-0001"]]
    assert answer["itemList"]
    assert all(category[items.index[e["itemId"]]] != own for e in answer["itemList"])
    with pytest.raises(InvalidInputException, match="itemId"):
        local.get_recommendations(
            {"campaignArn": f"{ARN_PREFIX}campaign/popularity", "filterArn": same.arn}
        )

    price = items.columns["PRICE"].numbers
    assert price is not None

    def prices(user_id: str) -> list[float]:
        got = local.get_recommendations(
            {
                "campaignArn": f"{ARN_PREFIX}campaign/popularity",
                "userId": user_id,
                "numResults": 30,
                "filterArn": by_country.arn,
            }
        )
        return [float(price[items.index[e["itemId"]]]) for e in got["itemList"]]

    assert max(prices("user-0003")) < 20  # user-0003 is in GB
    assert max(prices("user-0001")) >= 20  # CA: the clause does not apply


def test_invalid_expressions_are_rejected_when_resources_load(engine: Engine) -> None:
    bad = FilterDefinition("bad", 'INCLUDE ItemID WHERE Items.CATEGORY IN ("a") IF Users.X = 1')
    with pytest.raises(FilterSyntaxError, match="at position 48"):
        Engine(engine.dataset, Resources(DEMO_RESOURCES.deployments, (bad,)))
