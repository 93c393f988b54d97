"""The subgraph over HTTP, on the real aioboto3 client against the emulator on loopback.

These prove the data path end to end: how many calls an operation costs, that distinct
calls overlap, that one failing call fails only its own field, and that bad arguments
cost nothing.
"""

import time
from typing import Any

from tests.conftest import Emulator, Subgraph, codes, most_overlapping

RECS = "recommendations(numResults: {n}) {{ recommendationId source items {{ itemId score }} }}"


def entities(users: list[str], selection: str, also: str = "") -> str:
    """An `_entities` query for users, as a gateway sends it, plus other root fields."""
    reps = ", ".join(f'{{__typename: "User", id: "{u}"}}' for u in users)
    return f"{{ _entities(representations: [{reps}]) {{ ... on User {{ {selection} }} }} {also} }}"


def user(i: int) -> str:
    return f"user-{i:04d}"


def item_ids(recommendations: dict[str, Any]) -> list[str]:
    return [i["itemId"] for i in recommendations["items"]]


def test_the_readme_query_returns_five_items(
    aws_subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    body = aws_subgraph.query(entities([user(1)], RECS.format(n=5)))
    assert "errors" not in body, body
    recs = body["data"]["_entities"][0]["recommendations"]
    assert len(recs["items"]) == 5
    assert recs["source"] == "PERSONALIZE"
    assert recs["recommendationId"]
    scores = [i["score"] for i in recs["items"]]
    assert scores == sorted(scores, reverse=True)
    assert fresh_emulator.calls() == 1


def test_embedded_and_emulated_backends_give_the_same_items(
    aws_subgraph: Subgraph, local_subgraph: Subgraph
) -> None:
    query = entities([user(1), user(42)], RECS.format(n=10))
    remote = aws_subgraph.query(query)["data"]["_entities"]
    local = local_subgraph.query(query)["data"]["_entities"]
    assert [item_ids(e["recommendations"]) for e in remote] == [
        item_ids(e["recommendations"]) for e in local
    ]
    assert {e["recommendations"]["source"] for e in local} == {"LOCAL"}


def test_related_popular_and_ranked_items(aws_subgraph: Subgraph) -> None:
    body = aws_subgraph.query(
        """{
          popularItems(numResults: 4) { source items { itemId } }
          viewed: popularItems(useCase: MOST_VIEWED, numResults: 3) { items { itemId } }
          _entities(representations: [
            {__typename: "Item", id: "item-0007"}, {__typename: "User", id: "user-0002"}
          ]) {
            ... on Item { related(numResults: 6) { items { itemId item { id } } } }
            ... on User { rankedItems(itemIds: ["item-0001", "item-0002", "nope"]) {
              items { itemId } } }
          }
        }"""
    )
    assert "errors" not in body, body
    data = body["data"]
    assert len(data["popularItems"]["items"]) == 4
    assert len(data["viewed"]["items"]) == 3
    related = data["_entities"][0]["related"]["items"]
    assert len(related) == 6
    assert all(i["item"]["id"] == i["itemId"] for i in related)
    assert "item-0007" not in [i["itemId"] for i in related]
    ranked = item_ids(data["_entities"][1]["rankedItems"])
    assert sorted(ranked) == ["item-0001", "item-0002", "nope"]
    # Items the model does not know go last, as the API documents.
    assert ranked[-1] == "nope"


def test_calls_equal_distinct_requests(aws_subgraph: Subgraph, fresh_emulator: Emulator) -> None:
    # Three representations of two users, each asked the same thing twice under
    # aliases and something else once: 2 users x 2 distinct asks = 4 calls.
    selection = (
        "a: recommendations(numResults: 5) { items { itemId } } "
        "b: recommendations(numResults: 5) { items { itemId } } "
        "c: recommendations(numResults: 6) { items { itemId } }"
    )
    body = aws_subgraph.query(entities([user(1), user(2), user(1)], selection))
    assert "errors" not in body, body
    first, _, again = body["data"]["_entities"]
    assert first == again
    assert first["a"] == first["b"]
    assert fresh_emulator.calls() == 4

    # Nested lists: one popular list, then one related list per distinct item in it.
    fresh_emulator.reset()
    body = aws_subgraph.query(
        "{ popularItems(numResults: 5) { items { item {"
        "    related(numResults: 2) { items { itemId } } } } }"
        "  again: popularItems(numResults: 5) { items { itemId } } }"
    )
    assert "errors" not in body, body
    assert len(body["data"]["popularItems"]["items"]) == 5
    assert fresh_emulator.calls() == 1 + 5


def test_fifty_distinct_calls_overlap(aws_subgraph: Subgraph, fresh_emulator: Emulator) -> None:
    delay_ms = 500
    fresh_emulator.faults(delay_ms=delay_ms)
    query = entities([user(i) for i in range(100, 150)], RECS.format(n=3))
    started = time.perf_counter()
    body = aws_subgraph.query(query)
    elapsed = time.perf_counter() - started
    assert "errors" not in body, body
    assert all(len(e["recommendations"]["items"]) == 3 for e in body["data"]["_entities"])
    assert fresh_emulator.calls() == 50
    calls = fresh_emulator.requests()
    overlapping = most_overlapping(calls)
    print(
        f"50 distinct calls with {delay_ms} ms each: {elapsed * 1000:.0f} ms, "
        f"at most {overlapping} at once"
    )
    # Serially one call would be open at a time. The emulator's clock, not the test's:
    # a slow client spreads the arrivals but cannot make calls overlap that did not.
    assert len(calls) == 50
    assert overlapping >= 40, calls


def test_one_failing_call_nulls_only_its_field(
    aws_subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    fresh_emulator.faults(rules=[{"match": {"userId": user(3)}, "error": "ThrottlingException"}])
    body = aws_subgraph.query(
        entities(
            [user(1), user(3), user(4)],
            RECS.format(n=2),
            also="popularItems(numResults: 2) { items { itemId } }",
        )
    )
    data = body["data"]
    assert data["_entities"][1]["recommendations"] is None
    assert len(data["_entities"][0]["recommendations"]["items"]) == 2
    assert len(data["_entities"][2]["recommendations"]["items"]) == 2
    assert len(data["popularItems"]["items"]) == 2
    [error] = body["errors"]
    assert error["path"] == ["_entities", 1, "recommendations"]
    assert error["extensions"]["code"] == "UPSTREAM_THROTTLED"
    assert "Traceback" not in str(body)


def test_a_repeated_gateway_operation_answers_the_same_from_its_plan(
    aws_subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    # The first time, graphql-core answers and the document is validated and cached;
    # from then on its compiled plan does: the same data, errors and calls.
    query = """query Page($representations: [_Any!]!, $n: Int) {
      _entities(representations: $representations) { __typename
        ... on User { id recommendations(numResults: $n) { source items { itemId score
          item { __typename id } } } } } }"""
    variables = {
        "representations": [{"__typename": "User", "id": u} for u in (user(5), user(7))],
        "n": 3,
    }
    answers, calls = [], []
    for _ in range(3):
        fresh_emulator.reset()
        fresh_emulator.faults(
            rules=[{"match": {"userId": user(7)}, "error": "ThrottlingException"}]
        )
        answers.append(aws_subgraph.query(query, variables))
        calls.append(fresh_emulator.calls())
    assert answers[0] == answers[1] == answers[2]
    # User 5, and user 7 twice: a throttled call is retried once.
    assert calls == [3, 3, 3]
    [error] = answers[0]["errors"]
    assert error["path"] == ["_entities", 1, "recommendations"]
    assert error["extensions"]["code"] == "UPSTREAM_THROTTLED"
    assert error["locations"]
    assert len(answers[0]["data"]["_entities"][0]["recommendations"]["items"]) == 3


def test_unavailable_upstream_is_coded(aws_subgraph: Subgraph, fresh_emulator: Emulator) -> None:
    fresh_emulator.faults(rules=[{"match": {"itemId": "item-0009"}, "error": "InternalFailure"}])
    body = aws_subgraph.query(
        '{ _entities(representations: [{__typename: "Item", id: "item-0009"}]) '
        "{ ... on Item { related { items { itemId } } } } }"
    )
    assert body["data"]["_entities"][0]["related"] is None
    assert codes(body) == ["UPSTREAM_UNAVAILABLE"]


BAD_ARGUMENTS = [
    entities([user(1)], "recommendations(numResults: 501) { items { itemId } }"),
    entities([user(1)], "recommendations(numResults: 0) { items { itemId } }"),
    entities(["u" * 257], "recommendations { items { itemId } }"),
    entities(
        [user(1)], 'recommendations(context: [{key: "bad key", value: "x"}]) { items { itemId } }'
    ),
    entities(
        [user(1)],
        'recommendations(filter: {byCategory: {category: ["%s"]}}) { items { itemId } }'
        % ("x" * 1200),
    ),
    entities(
        [user(1)], "recommendations(filter: {byCategory: {category: []}}) { items { itemId } }"
    ),
    entities(
        [user(1)],
        'recommendations(promotion: {name: "p", percentPromotedItems: 0, '
        "filter: {excludePurchased: true}}) { items { itemId } }",
    ),
    entities([user(1)], "rankedItems(itemIds: []) { items { itemId } }"),
    "{ popularItems(useCase: BEST_SELLERS, numResults: 999) { items { itemId } } }",
    '{ _entities(representations: [{__typename: "Item", id: "item-0001"}]) '
    "{ ... on Item { related(useCase: CUSTOMERS_WHO_VIEWED) { items { itemId } } } } }",
]


def test_invalid_arguments_are_coded_and_cost_no_call(
    aws_subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    for query in BAD_ARGUMENTS:
        body = aws_subgraph.query(query)
        assert codes(body) == ["BAD_USER_INPUT"], (query, body)
    assert fresh_emulator.calls() == 0


def test_graphql_errors_are_coded(aws_subgraph: Subgraph) -> None:
    assert codes(aws_subgraph.query("{ popularItems { ")) == ["GRAPHQL_PARSE_FAILED"]
    assert codes(aws_subgraph.query("{ nope }")) == ["GRAPHQL_VALIDATION_FAILED"]
    assert codes(aws_subgraph.query("{ popularItems(useCase: NOPE) { source } }")) == [
        "GRAPHQL_VALIDATION_FAILED"
    ]
    both = entities(
        [user(1)],
        'recommendations(filter: {excludePurchased: true, byCategory: {category: ["a"]}}) '
        "{ source }",
    )
    assert codes(aws_subgraph.query(both)) == ["GRAPHQL_VALIDATION_FAILED"]
    body = aws_subgraph.query(
        "query($n: Int) { popularItems(numResults: $n) { source } }", {"n": "many"}
    )
    assert codes(body) == ["BAD_USER_INPUT"]


def test_graphiql_is_served(aws_subgraph: Subgraph) -> None:
    import httpx

    response = httpx.get(f"{aws_subgraph.url}/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()
