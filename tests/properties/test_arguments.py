"""Properties of every argument of every field that calls Personalize, over loopback.

(a) every response is data or coded errors, never INTERNAL_SERVER_ERROR;
(b) the subgraph never sends a request the engine rejects ("Personalize rejected the
    request"), and never refuses arguments within the documented limits;
(c) a BAD_USER_INPUT error names the offending argument;
(d) what the subgraph sends means what the client asked (filter values round-trip
    through Personalize's quoting).

Runs are derandomized (the same examples every time, no example database), so CI never
flakes; a failure prints the drawn call to reproduce it.
"""

from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from local_personalize.filters import parse_filter_value
from resolvers.arguments import encode_param
from settings import ParamType
from tests.properties.arguments import (
    ITEMS,
    MAX_CONTEXT,
    MAX_CONTEXT_VALUE,
    MAX_FILTER_VALUE,
    MAX_ID,
    MAX_INPUT_LIST,
    MAX_RESULTS,
    OMITTED,
    USERS,
    Call,
    EnumValue,
    calls,
    encoded_length,
    filter_numbers,
    filter_strings,
    id_verdict,
    judge,
)
from tests.properties.conftest import Live
from tests.properties.graph import FIELDS
from tests.properties.operations import BOUNDED, TALLY, UPSTREAM_REJECTED, build, check, send


def _events(drawn: list[Call]) -> None:
    """Shown by --hypothesis-show-statistics: how often each limit was crossed."""
    for call in drawn:
        for name, verdict in call.verdicts.items():
            event(f"{name} {verdict.name}")
        if not call.verdicts:
            event("all within limits")


def _run(live: Live, drawn: list[Call], inline: bool) -> None:
    operation = build(live.graph, drawn, inline)
    body = send(live.client, live.url, operation, len(drawn))
    check(body, drawn, operation)


@pytest.mark.parametrize("field_name", list(FIELDS))
@settings(BOUNDED, max_examples=70)
@given(data=st.data(), inline=st.booleans())
def test_each_field_alone(live: Live, field_name: str, data: st.DataObject, inline: bool) -> None:
    # The property config serves every field: a missing one is a failure, not a skip.
    assert field_name in live.graph.fields, f"{field_name} has no use case in this configuration"
    drawn = [data.draw(calls(live.graph, field_name), label="call")]
    _events(drawn)
    _run(live, drawn, inline)


@settings(BOUNDED, max_examples=30)
@given(data=st.data(), inline=st.booleans())
def test_fields_together_settle_alone(live: Live, data: st.DataObject, inline: bool) -> None:
    """Several calls in one operation: each gets its own data or its own error."""
    names = data.draw(st.lists(st.sampled_from(sorted(live.graph.fields)), min_size=2, max_size=4))
    drawn = [data.draw(calls(live.graph, n), label=n) for n in names]
    _events(drawn)
    _run(live, drawn, inline)


def _largest(live: Live, field_name: str) -> Call:
    """A call with every argument at its documented maximum."""
    spec = live.graph.fields[field_name]
    context = [
        {"key": f"{i:03d}".ljust(MAX_CONTEXT, "k"), "value": "v" * MAX_CONTEXT_VALUE}
        for i in range(MAX_CONTEXT)
    ]
    # 199 values of "ab" and one of "abc" quote to exactly 1000 characters.
    categories = ["ab"] * 199 + ["abc"]
    assert encoded_length(categories) == MAX_FILTER_VALUE
    strings = next(f for f in live.graph.filters if any(p.kind == "strings" for p in f.params))
    filter_ = {strings.name: {p.field: categories for p in strings.params}}
    args: dict[str, Any] = {
        "useCase": OMITTED,
        "numResults": MAX_RESULTS,
        "userId": "u" * MAX_ID,
        "filter": filter_,
        "context": context,
        "promotion": {"name": "P" * 63, "percentPromotedItems": 100, "filter": filter_},
        "itemIds": [f"{i:03d}".ljust(MAX_ID, "i") for i in range(MAX_INPUT_LIST)],
    }
    if field_name == "related":
        needs_user = [c for c in spec.use_cases if c.input == "user_and_item" and not c.metadata]
        if needs_user:
            args["useCase"] = EnumValue(needs_user[0].enum_value)
    chosen = {a: v for a, v in args.items() if a in spec.arg_types}
    case = spec.use_case(chosen.get("useCase") if chosen.get("useCase") is not OMITTED else None)
    key = "k" * MAX_ID if spec.owner else None
    return judge(live.graph, Call(spec, key, chosen), case.metadata, case.input)


@pytest.mark.parametrize("field_name", list(FIELDS))
def test_largest_valid_request_is_accepted(live: Live, field_name: str) -> None:
    """Every limit reached at once (hundreds of KB of variables) is still a valid request."""
    # The property config serves every field: a missing one is a failure, not a skip.
    assert field_name in live.graph.fields, f"{field_name} has no use case in this configuration"
    call = _largest(live, field_name)
    assert not call.verdicts, call.verdicts
    _run(live, [call], inline=False)


# --- entity keys --------------------------------------------------------------------------

_JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False)
)
_KEYS = st.one_of(
    st.just(OMITTED),
    _JSON_SCALARS,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.integers(1, USERS).map(lambda i: f"user-{i:04d}"),
    st.text(max_size=8),
)


def key_verdict(value: Any) -> str:
    """ok, either (an integer: GraphQL's ID takes one) or bad (anything but an id)."""
    if isinstance(value, str):
        return id_verdict(value).name.lower()
    if isinstance(value, int) and not isinstance(value, bool):
        return "either"
    return "bad"


@pytest.mark.parametrize("owner", ["user", "item"])
@settings(BOUNDED, max_examples=30)
@given(key=_KEYS)
def test_entity_keys_of_any_json_type(live: Live, owner: str, key: Any) -> None:
    """A representation whose key is missing, null, a boolean or a structure is refused."""
    graph = live.graph
    typename, key_field, selection = (
        (graph.user_type, graph.user_key, "recommendations(numResults: 1)")
        if owner == "user"
        else (graph.item_type, graph.item_key, "related(numResults: 1)")
    )
    representation: dict[str, Any] = {"__typename": typename}
    if key is not OMITTED:
        representation[key_field] = key
    query = (
        "query Q($rep: _Any!) { _entities(representations: [$rep]) {"
        f" ... on {typename} {{ {selection} {{ items {{ itemId }} }} }} }} }}"
    )
    TALLY.operations += 1
    TALLY.calls += 1
    response = live.client.post(
        live.url, json={"query": query, "variables": {"rep": representation}}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    errors = body.get("errors") or []
    for error in errors:
        assert (error.get("extensions") or {}).get("code") not in (None, "INTERNAL_SERVER_ERROR"), (
            representation,
            error,
        )
        assert not error["message"].startswith(UPSTREAM_REJECTED), error
    verdict = key_verdict(key)
    if verdict == "ok":
        assert not errors, (representation, errors)
    elif verdict == "bad":
        assert errors, (representation, body)
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", errors
        assert key_field in errors[0]["message"].lower(), errors


# --- filter values: the subgraph's quoting against the service's reading ---------------


@settings(BOUNDED, max_examples=200)
@given(values=st.lists(filter_strings(), min_size=1, max_size=5))
def test_string_filter_values_round_trip(values: list[str]) -> None:
    if encoded_length(values) > MAX_FILTER_VALUE:
        return
    encoded = encode_param(ParamType.STRINGS, values, "filter.f.p")
    assert len(encoded) <= MAX_FILTER_VALUE
    assert parse_filter_value("P", encoded) == values


@settings(BOUNDED, max_examples=100)
@given(value=filter_numbers())
def test_number_filter_values_round_trip(value: float) -> None:
    (parsed,) = parse_filter_value("P", encode_param(ParamType.NUMBER, value, "filter.f.p"))
    assert float(parsed) == value


def test_demo_ids_are_what_the_strategies_assume(live: Live) -> None:
    """The strategies draw users 1..5000 and items 1..2000; the demo must know both ends."""
    last_user = f"user-{USERS:04d}"
    query = f'{{ popularItems(numResults: 1, userId: "{last_user}") {{ items {{ itemId }} }} }}'
    body = live.client.post(live.url, json={"query": query}).json()
    assert "errors" not in body, body
    graph = live.graph
    ranked = (
        f'{{ _entities(representations: [{{__typename: "{graph.user_type}",'
        f' {graph.user_key}: "user-0001"}}]) {{ ... on {graph.user_type} {{'
        f' rankedItems(itemIds: ["item-{ITEMS:04d}"]) {{ items {{ itemId score }} }} }} }} }}'
    )
    body = live.client.post(live.url, json={"query": ranked}).json()
    assert "errors" not in body, body
    (item,) = body["data"]["_entities"][0]["rankedItems"]["items"]
    # Unknown items come back last with score 0: a known item scores above 0.
    assert item["score"] > 0, item
