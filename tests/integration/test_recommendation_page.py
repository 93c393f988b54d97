"""recommendationPage through real servers: no item twice, sections full, one round of calls.

The dedupe and fullness properties run on the demo engine (`make serve`'s subgraph) for
1,000 random demo users, judged against independent calls for 100 items each (a page
shows 45; an engine short of items for a section after the dedupe shows it too). The
calls' concurrency, failures and the call budget run on the Personalize backend against
the emulator, whose request log shows when each call arrived and was answered.
"""

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Emulator, Subgraph, codes, start_subgraph

PREFIX = "arn:aws:personalize:us-east-1:000000000000:"
MOST_VIEWED = PREFIX + "recommender/most-viewed"
MAX_CALLS = 6

# The home page of the property test: (section, the independent question for 100 items).
HOME = [
    ("{useCase: RECOMMENDED_FOR_YOU, numResults: 10}", "recommendations(numResults: 100)"),
    (
        "{useCase: USER_PERSONALIZATION, numResults: 12}",
        "recommendations(useCase: USER_PERSONALIZATION, numResults: 100)",
    ),
    ("{useCase: BEST_SELLERS, numResults: 15}", "popularItems(numResults: 100, userId: $user)"),
    (
        "{useCase: MOST_VIEWED, numResults: 8}",
        "popularItems(useCase: MOST_VIEWED, numResults: 100, userId: $user)",
    ),
]
SHOWN = [10, 12, 15, 8]
# 10 users: 20 aliased popular questions in a reference operation (limits.max_aliases).
USERS_PER_OPERATION = 10
SELECTION = "{ recommendationId source items { itemId } }"


def page_of(sections: list[str]) -> str:
    return f"recommendationPage(sections: [{', '.join(sections)}]) {SELECTION}"


def users(ids: list[str]) -> str:
    return ", ".join(f'{{__typename: "User", id: "{u}"}}' for u in ids)


def user_pages(subgraph: Subgraph, ids: list[str], sections: list[str]) -> list[Any]:
    fragment = f"... on User {{ {page_of(sections)} }}"
    body = subgraph.query(f"{{ _entities(representations: [{users(ids)}]) {{ {fragment} }} }}")
    assert "errors" not in body, body
    return [entity["recommendationPage"] for entity in body["data"]["_entities"]]


def item_ids(section: dict[str, Any]) -> list[str]:
    return [i["itemId"] for i in section["items"]]


def test_a_thousand_users_see_no_item_twice_and_full_sections(local_subgraph: Subgraph) -> None:
    chosen = random.Random(18).sample(range(1, 5001), 1000)
    ids = [f"user-{n:04d}" for n in chosen]
    sections = [section for section, _ in HOME]
    full = short = 0
    for start in range(0, len(ids), USERS_PER_OPERATION):
        batch = ids[start : start + USERS_PER_OPERATION]
        pages = user_pages(local_subgraph, batch, sections)
        # Independent of the page: each section's question, for 100 items.
        references = _reference(local_subgraph, batch)
        for user, page in zip(batch, pages, strict=True):
            reference = references[user]
            assert len(page) == len(HOME)
            shown: list[str] = []
            for index, (section, wanted, pool) in enumerate(
                zip(page, SHOWN, reference, strict=True)
            ):
                assert section is not None, (user, index)
                assert section["source"] == "LOCAL", (user, index)
                assert section["recommendationId"], (user, index)
                mine = item_ids(section)
                assert len(mine) <= wanted
                assert set(mine) <= set(pool), (user, index, mine)
                left = [i for i in pool if i not in shown]
                if len(left) >= wanted:
                    full += 1
                    assert len(mine) == wanted, (user, index, len(mine), len(left))
                else:
                    short += 1
                shown += mine
            assert len(shown) == len(set(shown)), (user, page)
    print(f"\n1,000 pages: {full} sections had enough items (all full), {short} had not")
    assert full > 3000  # the property is not vacuous


def _reference(subgraph: Subgraph, ids: list[str]) -> dict[str, list[list[str]]]:
    """Each section's question asked on its own for 100 items, per user: the
    users' own questions under `_entities`, the popular ones (with the user) at the root."""
    mine = " ".join(
        f"s{i}: {question} {SELECTION}"
        for i, (_, question) in enumerate(HOME)
        if question.startswith("recommendations")
    )
    popular = " ".join(
        f"u{n}s{i}: {question.replace('$user', json.dumps(user))} {SELECTION}"
        for n, user in enumerate(ids)
        for i, (_, question) in enumerate(HOME)
        if question.startswith("popularItems")
    )
    body = subgraph.query(
        f"{{ _entities(representations: [{users(ids)}]) {{ ... on User {{ {mine} }} }} {popular} }}"
    )
    assert "errors" not in body, body
    found = {}
    for n, (user, entity) in enumerate(zip(ids, body["data"]["_entities"], strict=True)):
        fields = {
            **entity,
            **{k[len(f"u{n}") :]: v for k, v in body["data"].items() if k.startswith(f"u{n}s")},
        }
        found[user] = [item_ids(fields[f"s{i}"]) for i in range(len(HOME))]
    return found


@pytest.fixture(scope="module")
def subgraph(logs: Path, emulator: Emulator) -> Iterator[Subgraph]:
    """On the Personalize backend against the emulator; no breaker (the tests fail calls
    on purpose) and a small call budget."""
    yield from start_subgraph(
        logs,
        "subgraph-page",
        {
            "SUBGRAPH_BACKEND": "personalize",
            "AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME": emulator.url,
            "SUBGRAPH_BREAKER__FAILURES": "0",
            # Every question is a call: the tests count them.
            "SUBGRAPH_CACHE__ENABLED": "false",
            "SUBGRAPH_LIMITS__MAX_CALLS": str(MAX_CALLS),
        },
    )


def test_a_page_makes_its_calls_in_one_concurrent_round(
    subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    fresh_emulator.faults(delay_ms=200)
    started = time.perf_counter()
    [page] = user_pages(
        subgraph,
        ["user-0301"],
        [
            "{useCase: RECOMMENDED_FOR_YOU, numResults: 5}",
            "{useCase: BEST_SELLERS, numResults: 5}",
            '{useCase: SIMILAR_ITEMS, itemId: "item-0042", numResults: 5}',
            '{useCase: PERSONALIZED_RANKING, itemIds: ["item-0001", "item-0002", "item-0003"]}',
        ],
    )
    elapsed = time.perf_counter() - started
    assert [len(item_ids(s)) for s in page] == [5, 5, 5, 3]
    calls = fresh_emulator.requests()
    assert len(calls) == 4, calls
    # Every call had arrived before the first was answered: one round, not four.
    assert max(c["arrived"] for c in calls) < min(c["answered"] for c in calls), calls
    spread = max(c["arrived"] for c in calls) - min(c["arrived"] for c in calls)
    print(
        f"\n4 sections of 200 ms: {elapsed * 1000:.0f} ms; arrivals within {spread * 1000:.1f} ms"
    )
    # (One after another they would take 800 ms at least; the arrivals above prove the
    # round without a wall-clock bound, which a loaded machine can break.)
    # Each section asks for what it shows plus what the sections before it show.
    asked = {c["body"].get("recommenderArn") or c["body"].get("campaignArn"): c for c in calls}
    assert asked[PREFIX + "recommender/recommended-for-you"]["body"]["numResults"] == 5
    assert asked[PREFIX + "recommender/best-sellers"]["body"]["numResults"] == 10
    assert asked[PREFIX + "campaign/sims"]["body"]["numResults"] == 15
    assert asked[PREFIX + "campaign/personalized-ranking"]["body"]["inputList"] == [
        "item-0001",
        "item-0002",
        "item-0003",
    ]


def test_a_failing_section_is_null_with_its_code_and_the_rest_still_deduped(
    subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    fresh_emulator.faults(
        rules=[{"match": {"recommenderArn": MOST_VIEWED}, "error": "InternalFailure"}]
    )
    sections = [
        "{useCase: BEST_SELLERS, numResults: 10}",
        "{useCase: MOST_VIEWED, numResults: 10}",
        "{useCase: POPULARITY, numResults: 10}",
        # Not deployed: its fallback chain (the best sellers) answers, deduplicated.
        "{useCase: NEW_ARRIVALS, numResults: 5}",
        "{useCase: SIMILAR_ITEMS, numResults: 5}",
    ]
    body = subgraph.query(f"{{ {page_of(sections)} }}")
    page = body["data"]["recommendationPage"]
    assert page[1] is None
    assert page[4] is None
    errors = {tuple(e["path"]): e for e in body["errors"]}
    assert errors[("recommendationPage", 1)]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    refused = errors[("recommendationPage", 4)]
    assert refused["extensions"]["code"] == "BAD_USER_INPUT"
    assert refused["message"] == "sections[4]: use case similarItems needs itemId"
    assert len(errors) == 2
    best, popular, fallback = page[0], page[2], page[3]
    assert (best["source"], popular["source"], fallback["source"]) == (
        "PERSONALIZE",
        "PERSONALIZE",
        "FALLBACK",
    )
    assert best["recommendationId"]
    assert popular["recommendationId"]
    assert best["recommendationId"] != popular["recommendationId"]
    assert fallback["recommendationId"] is None
    assert [len(item_ids(s)) for s in (best, popular, fallback)] == [10, 10, 5]
    shown = item_ids(best) + item_ids(popular) + item_ids(fallback)
    assert len(shown) == len(set(shown))
    # The best sellers twice (the first section, then the fallback's): the fallback
    # showed the next ones, none of the first section's.
    assert not set(item_ids(fallback)) & set(item_ids(best))


def test_a_pages_calls_count_against_max_calls(
    subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    page = page_of([f"{{useCase: POPULARITY, numResults: {n}}}" for n in (1, 2, 3, 4)])
    popular = " ".join(f"p{n}: popularItems(numResults: {n}) {{ source }}" for n in (1, 2, 3))
    body = subgraph.query(f"{{ {page} {popular} }}")
    # 4 + 3 distinct calls against a budget of 6: one field is refused, one call not made.
    assert codes(body) == ["OPERATION_TOO_EXPENSIVE"], body
    assert fresh_emulator.calls() == MAX_CALLS


def test_too_many_sections_are_refused_before_any_call(
    subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    body = subgraph.query(f"{{ {page_of(['{useCase: BEST_SELLERS}'] * 11)} }}")
    assert body["data"] == {"recommendationPage": None}
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "1..10 sections" in error["message"]
    assert fresh_emulator.calls() == 0


@pytest.mark.parametrize(
    ("host", "section", "message"),
    [
        ("query", "{useCase: RECOMMENDED_FOR_YOU}", "use case recommendedForYou needs userId"),
        ("query", '{useCase: PERSONALIZED_RANKING, itemIds: ["item-0001"]}', "needs userId"),
        ("user", "{useCase: PERSONALIZED_RANKING}", "give itemIds"),
        ("user", '{useCase: BEST_SELLERS, itemId: "item-0001"}', "takes no itemId"),
        ("user", '{useCase: BEST_SELLERS, itemIds: ["item-0001"]}', "itemIds is for ranking"),
        ("user", "{useCase: BEST_SELLERS, numResults: 501}", "numResults must be between 1"),
        (
            "user",
            "{useCase: BEST_SELLERS_WITH_DETAILS, numResults: 51}",
            "numResults must be between 1 and 50",
        ),
        ("item", "{useCase: CUSTOMERS_WHO_VIEWED}", "needs userId"),
    ],
)
def test_a_section_that_does_not_fit_its_use_case_is_refused(
    subgraph: Subgraph, fresh_emulator: Emulator, host: str, section: str, message: str
) -> None:
    sections = ["{useCase: POPULARITY, numResults: 3}", section]
    if host == "query":
        query, path = f"{{ {page_of(sections)} }}", ["recommendationPage", 1]
    else:
        typename, key = ("User", "user-0007") if host == "user" else ("Item", "item-0007")
        query = (
            f'{{ _entities(representations: [{{__typename: "{typename}", id: "{key}"}}]) '
            f"{{ ... on {typename} {{ {page_of(sections)} }} }} }}"
        )
        path = ["_entities", 0, "recommendationPage", 1]
    body = subgraph.query(query)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["path"] == path
    assert error["message"].startswith("sections[1]: "), error
    assert message in error["message"], error
    # The other section is answered, with the one call it needs.
    assert fresh_emulator.calls() == 1


def test_a_product_page_seeds_item_use_cases_with_its_item(
    subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    sections = [
        "{useCase: SIMILAR_ITEMS, numResults: 4}",
        "{useCase: CUSTOMERS_WHO_VIEWED, numResults: 4}",
        '{useCase: SIMILAR_ITEMS, itemId: "item-0100", numResults: 4}',
    ]
    field = page_of(sections).replace("(", '(userId: "user-0009", ', 1)
    body = subgraph.query(
        '{ _entities(representations: [{__typename: "Item", id: "item-0042"}]) '
        f"{{ ... on Item {{ {field} }} }} }}"
    )
    assert "errors" not in body, body
    page = body["data"]["_entities"][0]["recommendationPage"]
    assert [len(item_ids(s)) for s in page] == [4, 4, 4]
    shown = [i for s in page for i in item_ids(s)]
    assert len(shown) == len(set(shown))
    bodies = sorted(
        (c["body"].get("itemId"), c["body"].get("userId")) for c in fresh_emulator.requests()
    )
    # The page's user goes with every call, as `related(userId:)` sends it.
    assert bodies == [("item-0042", "user-0009")] * 2 + [("item-0100", "user-0009")]
