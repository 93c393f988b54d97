"""Retries, deadline, breaker, fallbacks and the call budget, through aioboto3 and the emulator.

Faults come from the emulator's rules, matched on request fields, so each test fails
exactly the calls it means to; the emulator's request log shows what was really sent.
"""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from settings import DEMO_CONFIG
from tests.conftest import Emulator, Subgraph, codes, start_subgraph

PREFIX = "arn:aws:personalize:us-east-1:000000000000:"
FOR_YOU = PREFIX + "recommender/recommended-for-you"
PERSONALIZATION = PREFIX + "campaign/user-personalization"
BEST_SELLERS = PREFIX + "recommender/best-sellers"
MOST_VIEWED = PREFIX + "recommender/most-viewed"
POPULARITY = PREFIX + "campaign/popularity"
RANKING = PREFIX + "campaign/personalized-ranking"
RETIRED = PREFIX + "campaign/retired"
STATIC = ["item-0001", "item-0002", "item-0003"]

EXTRA = f"""
[use_cases.fragile]
arn = "{FOR_YOU}"
field = "recommendations"
input = "user"
fallback = ["userPersonalization"]
fallback_items = {STATIC!r}

[use_cases.retired]
arn = "{RETIRED}"
field = "popularItems"
input = "none"
fallback = ["popularity"]
fallback_items = {STATIC!r}

[use_cases.rankOrAsGiven]
arn = "{RANKING}"
field = "rankedItems"
input = "user"
fallback_to_input = true

[breaker]
failures = 3
reset_after = 1.0
"""


@pytest.fixture(scope="module")
def subgraph(logs: Path, emulator: Emulator) -> Iterator[Subgraph]:
    config = logs / "reliability.toml"
    config.write_text(DEMO_CONFIG.read_text() + EXTRA)
    yield from start_subgraph(
        logs,
        "subgraph-reliability",
        {
            "SUBGRAPH_CONFIG": str(config),
            "SUBGRAPH_BACKEND": "personalize",
            "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": emulator.url,
            "SUBGRAPH_PERSONALIZE__MAX_ATTEMPTS": "3",
            "SUBGRAPH_PERSONALIZE__DEADLINE": "1.0",
            "SUBGRAPH_PERSONALIZE__READ_TIMEOUT": "0.5",
            "SUBGRAPH_PERSONALIZE__BACKOFF_BASE": "0.01",
            "SUBGRAPH_PERSONALIZE__BACKOFF_CAP": "0.05",
            "SUBGRAPH_LIMITS__MAX_CALLS": "4",
            # These tests ask the same popular lists again to watch a failing upstream;
            # cached answers (popularItems keeps them 300 s by default) would hide it.
            "SUBGRAPH_CACHE__ENABLED": "false",
        },
    )


def sent(emulator: Emulator) -> list[dict[str, Any]]:
    """The request bodies the emulator received, oldest first."""
    requests = emulator.requests()
    return [r["body"] for r in requests]


def calls_to(emulator: Emulator, arn: str) -> int:
    return sum(arn in (b.get("recommenderArn"), b.get("campaignArn")) for b in sent(emulator))


def fail(emulator: Emulator, *rules: dict[str, Any], **config: Any) -> None:
    emulator.faults(rules=list(rules), **config)


def test_throttling_is_retried_up_to_max_attempts(
    subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    fail(
        fresh_emulator, {"match": {"recommenderArn": BEST_SELLERS}, "error": "ThrottlingException"}
    )
    body = subgraph.query("{ popularItems(useCase: BEST_SELLERS) { items { itemId } } }")
    assert body["data"]["popularItems"] is None
    assert codes(body) == ["UPSTREAM_THROTTLED"]
    assert calls_to(fresh_emulator, BEST_SELLERS) == 3


def test_rejected_input_is_not_retried(subgraph: Subgraph, fresh_emulator: Emulator) -> None:
    fail(
        fresh_emulator,
        {"match": {"recommenderArn": BEST_SELLERS}, "error": "InvalidInputException"},
    )
    body = subgraph.query("{ popularItems(useCase: BEST_SELLERS) { items { itemId } } }")
    assert codes(body) == ["BAD_USER_INPUT"]
    assert calls_to(fresh_emulator, BEST_SELLERS) == 1


def test_the_deadline_bounds_retries_and_the_fallback_answers_in_time(
    subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    # Every call takes 10 s; the operation's deadline is 1 s. (The emulator stops waiting
    # when the subgraph hangs up, so nothing waits out the delay afterwards.)
    fresh_emulator.faults(delay_ms=10000)
    started = time.perf_counter()
    body = subgraph.query(
        "{ popularItems(useCase: RETIRED) { source recommendationId items { itemId } } }"
    )
    elapsed = time.perf_counter() - started
    assert "errors" not in body
    # The retired campaign timed out, its fallback had no time left: the static list.
    assert body["data"]["popularItems"] == {
        "source": "FALLBACK",
        "recommendationId": None,
        "items": [{"itemId": i} for i in STATIC],
    }
    assert elapsed < 3.0
    # The first attempt hit the 0.5 s read timeout; the retry was cut off by the deadline
    # and no third attempt was made.
    assert calls_to(fresh_emulator, RETIRED) == 2


def test_a_failing_use_case_falls_back_to_the_next_one(
    subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    fail(
        fresh_emulator,
        {
            "match": {"recommenderArn": FOR_YOU, "numResults": 7},
            "error": "ServiceUnavailable",
            "status": 503,
        },
    )
    query = """{ user: _entities(representations: [{__typename: "User", id: "user-0042"}]) {
        ... on User {
          fragile: recommendations(useCase: FRAGILE, numResults: 7) {
            source recommendationId items { itemId } }
          direct: recommendations(useCase: USER_PERSONALIZATION, numResults: 7) {
            source recommendationId items { itemId } } } } }"""
    body = subgraph.query(query)
    assert "errors" not in body, body
    user = body["data"]["user"][0]
    assert user["fragile"]["source"] == "FALLBACK"
    assert user["fragile"]["recommendationId"] is None
    assert user["direct"]["source"] == "PERSONALIZE"
    assert user["direct"]["recommendationId"]
    assert user["fragile"]["items"] == user["direct"]["items"]
    # The fallback asked the same question as `direct`: one call served both.
    assert calls_to(fresh_emulator, PERSONALIZATION) == 1
    assert calls_to(fresh_emulator, FOR_YOU) == 3


def test_when_the_whole_chain_fails_the_static_list_answers(
    subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    fail(fresh_emulator, {"match": {"campaignArn": POPULARITY}, "error": "ThrottlingException"})
    body = subgraph.query(
        "{ popularItems(useCase: RETIRED, numResults: 2) { source items { itemId } } }"
    )
    assert "errors" not in body
    assert body["data"]["popularItems"] == {
        "source": "FALLBACK",
        "items": [{"itemId": i} for i in STATIC[:2]],
    }
    # The retired ARN is not found (not retried: 404 is final), popularity was retried.
    assert calls_to(fresh_emulator, RETIRED) == 1
    assert calls_to(fresh_emulator, POPULARITY) == 3


def test_a_failed_load_is_not_cached_within_the_operation(
    subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    # A success first, so failures left by earlier tests cannot open the breaker here.
    ok = subgraph.query("{ popularItems(useCase: POPULARITY, numResults: 2) { source } }")
    assert ok["data"] == {"popularItems": {"source": "PERSONALIZE"}}
    fail(
        fresh_emulator,
        {"match": {"campaignArn": POPULARITY}, "error": "ThrottlingException"},
        per_arn={RETIRED: {"delay_ms": 300}},
    )
    # `popularity` fails directly; `retired` fails 0.3 s later and falls back to the same
    # request, which must be called again rather than answered with the cached failure.
    body = subgraph.query(
        """{ a: popularItems(useCase: POPULARITY, numResults: 2) { source }
             b: popularItems(useCase: RETIRED, numResults: 2) { source } }"""
    )
    assert body["data"] == {"a": None, "b": {"source": "FALLBACK"}}
    assert codes(body) == ["UPSTREAM_THROTTLED"]
    assert calls_to(fresh_emulator, POPULARITY) == 1 + 6


def test_rankings_fall_back_to_the_order_given(
    subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    fail(
        fresh_emulator,
        {"match": {"campaignArn": RANKING}, "error": "InternalFailure", "status": 500},
    )
    body = subgraph.query(
        """{ _entities(representations: [{__typename: "User", id: "user-0009"}]) {
             ... on User { rankedItems(
               useCase: RANK_OR_AS_GIVEN, itemIds: ["item-0300", "item-0100", "item-0200"]) {
               source items { itemId score } } } } }"""
    )
    assert "errors" not in body
    assert body["data"]["_entities"][0]["rankedItems"] == {
        "source": "FALLBACK",
        "items": [{"itemId": i, "score": None} for i in ("item-0300", "item-0100", "item-0200")],
    }


def test_the_breaker_opens_after_repeated_failures_and_a_probe_closes_it(
    subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    query = "{ popularItems(useCase: MOST_VIEWED) { source } }"
    assert subgraph.query(query)["data"] == {"popularItems": {"source": "PERSONALIZE"}}
    fresh_emulator.reset()
    fail(
        fresh_emulator,
        {"match": {"recommenderArn": MOST_VIEWED}, "error": "InternalFailure", "status": 500},
    )
    for _ in range(3):
        assert codes(subgraph.query(query)) == ["UPSTREAM_UNAVAILABLE"]
    assert calls_to(fresh_emulator, MOST_VIEWED) == 9
    # Open: refused without a call.
    body = subgraph.query(query)
    assert codes(body) == ["UPSTREAM_UNAVAILABLE"]
    assert "paused" in body["errors"][0]["message"]
    assert calls_to(fresh_emulator, MOST_VIEWED) == 9
    # Other ARNs are unaffected.
    assert subgraph.query("{ popularItems(useCase: BEST_SELLERS) { source } }")["data"] == {
        "popularItems": {"source": "PERSONALIZE"}
    }
    # After the cool-down, one probe goes out; the upstream has recovered, so it closes.
    fresh_emulator.faults()
    time.sleep(1.1)
    assert subgraph.query(query)["data"] == {"popularItems": {"source": "PERSONALIZE"}}
    assert subgraph.query(query)["data"] == {"popularItems": {"source": "PERSONALIZE"}}
    assert calls_to(fresh_emulator, MOST_VIEWED) == 11


def test_a_failed_probe_reopens_the_breaker(subgraph: Subgraph, fresh_emulator: Emulator) -> None:
    query = "{ popularItems(useCase: POPULARITY, numResults: 3) { source } }"
    # A success first, so failures left by earlier tests do not count.
    assert subgraph.query(query)["data"] == {"popularItems": {"source": "PERSONALIZE"}}
    fail(
        fresh_emulator,
        {"match": {"campaignArn": POPULARITY, "numResults": 3}, "error": "ThrottlingException"},
    )
    for _ in range(3):
        subgraph.query(query)
    time.sleep(1.1)
    before = calls_to(fresh_emulator, POPULARITY)
    # The probe fails (with its retries) and the breaker opens again at once.
    assert codes(subgraph.query(query)) == ["UPSTREAM_THROTTLED"]
    assert codes(subgraph.query(query)) == ["UPSTREAM_UNAVAILABLE"]
    assert calls_to(fresh_emulator, POPULARITY) == before + 3
    fresh_emulator.faults()
    time.sleep(1.1)
    assert subgraph.query(query)["data"] == {"popularItems": {"source": "PERSONALIZE"}}


def test_calls_beyond_the_operation_budget_cost_nothing(
    subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    fields = " ".join(
        f"n{n}: popularItems(useCase: BEST_SELLERS, numResults: {n}) {{ source }}"
        for n in range(1, 7)
    )
    body = subgraph.query(f"{{ {fields} }}")
    data = body["data"]
    assert [data[f"n{n}"] for n in range(1, 5)] == [{"source": "PERSONALIZE"}] * 4
    assert data["n5"] is None
    assert data["n6"] is None
    assert codes(body) == ["OPERATION_TOO_EXPENSIVE"] * 2
    assert fresh_emulator.calls() == 4


@pytest.fixture(scope="module")
def narrow(logs: Path, emulator: Emulator) -> Iterator[Subgraph]:
    """One Personalize call in flight at a time, and a 1 s deadline."""
    yield from start_subgraph(
        logs,
        "subgraph-narrow",
        {
            "SUBGRAPH_BACKEND": "personalize",
            "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": emulator.url,
            "SUBGRAPH_PERSONALIZE__MAX_CONCURRENCY": "1",
            "SUBGRAPH_PERSONALIZE__DEADLINE": "1.0",
            "SUBGRAPH_PERSONALIZE__READ_TIMEOUT": "0.5",
            "SUBGRAPH_BREAKER__FAILURES": "2",
        },
    )


def test_waiting_for_our_own_slot_is_not_the_upstreams_fault(
    narrow: Subgraph, fresh_emulator: Emulator
) -> None:
    # Six distinct calls of 0.3 s through one slot: about three fit in the deadline.
    fresh_emulator.faults(delay_ms=300)
    fields = " ".join(
        f"n{n}: popularItems(useCase: BEST_SELLERS, numResults: {n}) {{ source }}"
        for n in range(1, 7)
    )
    body = narrow.query(f"{{ {fields} }}")
    answered = [k for k, v in body["data"].items() if v is not None]
    assert 2 <= len(answered) <= 4, body
    assert set(codes(body)) == {"UPSTREAM_TIMEOUT"}
    # Nothing was retried (the waits were ours), and the breaker did not open although
    # more calls "failed" than its threshold of 2.
    # (At most one more went out and was cut off by the deadline.)
    assert len(answered) <= fresh_emulator.calls() <= len(answered) + 1
    fresh_emulator.faults()
    again = narrow.query("{ popularItems(useCase: BEST_SELLERS) { source } }")
    assert again["data"] == {"popularItems": {"source": "PERSONALIZE"}}


@pytest.fixture(scope="module")
def patient(logs: Path, emulator: Emulator) -> Iterator[Subgraph]:
    """The fallback configuration with a 3 s deadline and 2 s read timeout."""
    config = logs / "patient.toml"
    config.write_text(DEMO_CONFIG.read_text() + EXTRA)
    yield from start_subgraph(
        logs,
        "subgraph-patient",
        {
            "SUBGRAPH_CONFIG": str(config),
            "SUBGRAPH_BACKEND": "personalize",
            "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": emulator.url,
            "SUBGRAPH_PERSONALIZE__DEADLINE": "3.0",
            "SUBGRAPH_PERSONALIZE__READ_TIMEOUT": "2.0",
            # Its test asks the same popular lists twice: cached, the second would not wait.
            "SUBGRAPH_CACHE__ENABLED": "false",
        },
    )


def test_a_fast_failure_falls_back_without_waiting_for_slow_siblings(
    patient: Subgraph, fresh_emulator: Emulator
) -> None:
    # `retired` fails at once (404). Its fallback (popularity, 1.6 s) fits in the 3 s
    # deadline only if it starts without waiting for the 1.6 s best-sellers sibling;
    # had it waited, the deadline would leave only the 3-item static list.
    query = """{ slow: popularItems(useCase: BEST_SELLERS, numResults: 4) { source }
      retired: popularItems(useCase: RETIRED, numResults: 4) { source items { itemId } } }"""
    # Twice: graphql-core answers the first time, the document's compiled plan the second.
    for _ in range(2):
        fresh_emulator.reset()
        fail(
            fresh_emulator,
            per_arn={BEST_SELLERS: {"delay_ms": 1600}, POPULARITY: {"delay_ms": 1600}},
        )
        body = patient.query(query)
        assert "errors" not in body, body
        assert body["data"]["slow"] == {"source": "PERSONALIZE"}
        assert body["data"]["retired"]["source"] == "FALLBACK"
        # Four items: popularity's live answer, not the static list.
        assert len(body["data"]["retired"]["items"]) == 4
        assert calls_to(fresh_emulator, POPULARITY) == 1
