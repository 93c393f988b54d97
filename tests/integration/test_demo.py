"""The demo shows what the service can do without writing a configuration first."""

from tests.conftest import Subgraph


def test_a_use_case_not_deployed_is_answered_by_its_fallback_chain(
    local_subgraph: Subgraph,
) -> None:
    body = local_subgraph.query(
        "{ popularItems(useCase: NEW_ARRIVALS, numResults: 3)"
        " { recommendationId source items { itemId } } }"
    )
    assert "errors" not in body, body
    answer = body["data"]["popularItems"]
    assert answer["source"] == "FALLBACK"
    assert answer["recommendationId"] is None
    assert len(answer["items"]) == 3


def test_a_use_case_returns_item_metadata(local_subgraph: Subgraph) -> None:
    body = local_subgraph.query(
        "{ popularItems(useCase: BEST_SELLERS_WITH_DETAILS, numResults: 2)"
        " { source items { itemId metadata { key value } } } }"
    )
    assert "errors" not in body, body
    items = body["data"]["popularItems"]["items"]
    assert len(items) == 2
    for item in items:
        keys = {entry["key"] for entry in item["metadata"]}
        assert keys == {"TITLE", "CATEGORY", "PRICE"}, item
