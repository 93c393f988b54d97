"""cartRecommendations through real servers: the Personalize backend against the emulator.

The merge is judged against an independent reciprocal-rank fusion, computed here with
exact fractions from single `related` calls; the emulator's request log shows the
seeds' calls in one round and the re-ranking's input.
"""

import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Emulator, Subgraph, codes, start_subgraph

PREFIX = "arn:aws:personalize:us-east-1:000000000000:"
SIMS = PREFIX + "campaign/sims"
RANKING = PREFIX + "campaign/personalized-ranking"
MAX_CALLS = 6
K = 60
SELECTION = "{ recommendationId source items { itemId score } }"


@pytest.fixture(scope="module")
def subgraph(logs: Path, emulator: Emulator) -> Iterator[Subgraph]:
    """Every question a call (no cache), no breaker, a small call budget."""
    yield from start_subgraph(
        logs,
        "subgraph-cart",
        {
            "SUBGRAPH_BACKEND": "personalize",
            "AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME": emulator.url,
            "SUBGRAPH_BREAKER__FAILURES": "0",
            "SUBGRAPH_CACHE__ENABLED": "false",
            "SUBGRAPH_LIMITS__MAX_CALLS": str(MAX_CALLS),
        },
    )


def cart(subgraph: Subgraph, seeds: list[str], extra: str = "") -> dict[str, Any]:
    ids = ", ".join(f'"{s}"' for s in seeds)
    return subgraph.query(f"{{ cartRecommendations(itemIds: [{ids}]{extra}) {SELECTION} }}")


def related(subgraph: Subgraph, seeds: list[str], num_results: int) -> dict[str, list[str]]:
    """Each seed's `related` list asked on its own."""
    reps = ", ".join(f'{{__typename: "Item", id: "{s}"}}' for s in seeds)
    body = subgraph.query(
        f"{{ _entities(representations: [{reps}]) {{ ... on Item {{ "
        f"related(numResults: {num_results}) {{ items {{ itemId }} }} }} }} }}"
    )
    assert "errors" not in body, body
    return {
        seed: [i["itemId"] for i in entity["related"]["items"]]
        for seed, entity in zip(seeds, body["data"]["_entities"], strict=True)
    }


def reference_fusion(seeds: list[str], lists: list[list[str]], shows: int) -> list[str]:
    """Reciprocal-rank fusion written again, with exact scores."""
    scores: dict[str, Fraction] = {}
    best: dict[str, int] = {}
    for items in lists:
        for rank, item in enumerate(items, start=1):
            if item in seeds:
                continue
            scores[item] = scores.get(item, Fraction(0)) + Fraction(1, K + rank)
            best[item] = min(best.get(item, rank), rank)
    return sorted(scores, key=lambda i: (-scores[i], best[i], i))[:shows]


def ids(answer: dict[str, Any]) -> list[str]:
    return [i["itemId"] for i in answer["items"]]


def a_cart(subgraph: Subgraph) -> list[str]:
    """Three seeds where the first's list holds the second: leaving seeds out is tested."""
    first = related(subgraph, ["item-0001"], 5)["item-0001"]
    return ["item-0001", first[0], "item-0100"]


def test_a_cart_is_the_fusion_of_its_seeds_lists_in_one_round(
    subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    seeds = a_cart(subgraph)
    fresh_emulator.reset()
    fresh_emulator.faults(delay_ms=200)
    started = time.perf_counter()
    # A repeated seed counts once.
    body = cart(subgraph, [*seeds, seeds[1]], ", numResults: 10")
    elapsed = time.perf_counter() - started
    assert "errors" not in body, body
    answer = body["data"]["cartRecommendations"]
    calls = fresh_emulator.requests()
    assert len(calls) == 3, calls
    # All three had arrived before the first was answered; each asked n + 3 items.
    assert max(c["arrived"] for c in calls) < min(c["answered"] for c in calls), calls
    assert sorted(c["body"]["itemId"] for c in calls) == sorted(seeds)
    assert {c["body"]["numResults"] for c in calls} == {13}
    print(f"\n3 seeds of 200 ms: {elapsed * 1000:.0f} ms")
    fresh_emulator.faults()
    # The seeds' own lists, asked for as many items, fused independently.
    lists = related(subgraph, seeds, 13)
    assert seeds[1] in lists[seeds[0]]  # the rule "seeds left out" is exercised
    expected = reference_fusion(seeds, [lists[s] for s in seeds], 10)
    assert ids(answer) == expected
    assert len(expected) == 10
    assert not set(ids(answer)) & set(seeds)
    assert answer["recommendationId"] is None
    assert answer["source"] == "PERSONALIZE"
    for item in answer["items"]:
        ranks = [lists[s].index(item["itemId"]) + 1 for s in seeds if item["itemId"] in lists[s]]
        assert item["score"] == pytest.approx(sum(1 / (K + r) for r in ranks), rel=1e-12)
    # Deterministic: the same answer again, and in another order of the seeds.
    assert cart(subgraph, seeds, ", numResults: 10") == body
    assert cart(subgraph, seeds[::-1], ", numResults: 10") == body


def test_a_users_cart_is_reranked_by_the_configured_ranking(
    subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    seeds = a_cart(subgraph)
    merged = ids(cart(subgraph, seeds, ", numResults: 8")["data"]["cartRecommendations"])
    fresh_emulator.reset()
    body = cart(subgraph, seeds, ', numResults: 8, userId: "user-0301"')
    assert "errors" not in body, body
    answer = body["data"]["cartRecommendations"]
    calls = fresh_emulator.requests()
    assert len(calls) == 4, calls
    [ranking] = [c["body"] for c in calls if c["body"].get("campaignArn") == RANKING]
    assert ranking["inputList"] == merged
    assert ranking["userId"] == "user-0301"
    # The answer is the ranking's: its order, scores and recommendationId.
    listed = ", ".join(f'"{i}"' for i in merged)
    alone = subgraph.query(
        '{ _entities(representations: [{__typename: "User", id: "user-0301"}]) '
        f"{{ ... on User {{ rankedItems(itemIds: [{listed}]) {SELECTION} }} }} }}"
    )["data"]["_entities"][0]["rankedItems"]
    assert answer["items"] == alone["items"]
    assert answer["recommendationId"]
    assert sorted(ids(answer)) == sorted(merged)
    assert ids(answer) != merged  # the ranking did reorder


def test_one_failing_seed_is_coded_while_the_others_answer(
    subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    seeds = a_cart(subgraph)
    good = related(subgraph, [seeds[0], seeds[2]], 13)
    fresh_emulator.faults(rules=[{"match": {"itemId": seeds[1]}, "error": "InternalFailure"}])
    # The first seed twice: the failed one is named by its index in itemIds.
    body = cart(subgraph, [seeds[0], *seeds], ", numResults: 10")
    answer = body["data"]["cartRecommendations"]
    [error] = body["errors"]
    assert error["path"] == ["cartRecommendations"]
    assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert error["message"].startswith(f"itemIds[2] ({seeds[1]}): ")
    # The merge of the other two, with every seed still left out.
    assert ids(answer) == reference_fusion(seeds, list(good.values()), 10)


def test_every_seed_failing_nulls_the_field_with_each_code(
    subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    fresh_emulator.faults(rules=[{"match": {"campaignArn": SIMS}, "error": "InternalFailure"}])
    body = cart(subgraph, ["item-0001", "item-0002"])
    assert body["data"] == {"cartRecommendations": None}
    assert codes(body) == ["UPSTREAM_UNAVAILABLE", "UPSTREAM_UNAVAILABLE"]
    assert {e["message"].split(":")[0] for e in body["errors"]} == {
        "itemIds[0] (item-0001)",
        "itemIds[1] (item-0002)",
    }


def test_seeds_count_against_max_calls(subgraph: Subgraph, fresh_emulator: Emulator) -> None:
    seeds = [f"item-{n:04d}" for n in range(1, 9)]
    body = cart(subgraph, seeds, ", numResults: 5")
    # 8 seeds against a budget of 6: two are refused, the six others merged.
    assert codes(body) == ["OPERATION_TOO_EXPENSIVE"] * 2, body
    assert fresh_emulator.calls() == MAX_CALLS
    assert len(ids(body["data"]["cartRecommendations"])) == 5
    # With a user the re-ranking is one more call: 6 seeds and it exceed the budget,
    # and the merged order stands with the re-ranking's error.
    fresh_emulator.reset()
    body = cart(subgraph, seeds[:6], ', numResults: 5, userId: "user-0001"')
    assert codes(body) == ["OPERATION_TOO_EXPENSIVE"], body
    assert body["errors"][0]["message"].startswith("re-ranking (personalizedRanking): ")
    assert body["data"]["cartRecommendations"]["recommendationId"] is None
    assert fresh_emulator.calls() == MAX_CALLS


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("itemIds: []", "itemIds takes 1..20 item ids, got 0"),
        (
            "itemIds: [" + ", ".join(f'"i{n}"' for n in range(21)) + "]",
            "itemIds takes 1..20 item ids, got 21",
        ),
        ('itemIds: ["item-0001"], useCase: CUSTOMERS_WHO_VIEWED', "needs userId"),
        ('itemIds: ["item-0001"], numResults: 0', "numResults must be between 1 and 500"),
        ('itemIds: [""]', "itemIds must not be empty"),
    ],
)
def test_bad_carts_are_refused_before_any_call(
    subgraph: Subgraph, fresh_emulator: Emulator, arguments: str, message: str
) -> None:
    body = subgraph.query(f"{{ cartRecommendations({arguments}) {SELECTION} }}")
    assert body["data"] == {"cartRecommendations": None}
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert message in error["message"]
    assert fresh_emulator.calls() == 0
