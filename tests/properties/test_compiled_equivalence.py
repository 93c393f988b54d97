"""The compiled path answers byte for byte what graphql-core answers, or declines.

Two subgraphs run on loopback against one emulator: the shipped app (compiled path and
item lists on, the defaults) and the reference (`server.compiled_path` off: graphql-core
and Strawberry only). Every drawn request
(`tests.properties.documents`) goes to both, twice, in lockstep: shipped, reference,
shipped, reference. A document the shipped app has not seen is graphql-core's there
too (the compiled path takes only documents parsed and validated once before), with
the item lists; the second sending is the compiled path's whenever it accepts the
operation. Each pair compares one of the shipped app's paths with the reference, on
servers whose caches have seen the same requests in the same order.

Compared: HTTP status, media type and body bytes, with two exceptions. The engine draws
each recommendationId at random (`RID-` and a UUID4), so each distinct id becomes its
rank of first appearance across one server's two answers: ids may differ, but which
fields share one (a shared call, a stored answer) may not. And the errors may come in
another order: graphql-core lists them as fields fail, which with concurrent calls is
as upstream answers arrive, and varies from run to run.

The emulator fails calls by the ids and numResults they carry (fault rules, not rates),
so upstream errors and fallback chains are compared too. The circuit breaker is off: it
reopens on the clock, which the two servers do not share. Mutations are not drawn: the
compiled path never takes them, and recordEvents answers with delivery timings.
"""

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import event, given, settings

from settings import LimitsSettings
from tests.conftest import Emulator, Subgraph, start_subgraph
from tests.properties.documents import Drawn, Steering, requests
from tests.properties.graph import Graph, live_schema, load_graph
from tests.properties.operations import BOUNDED, TALLY
from tests.servers import REPO_ROOT

EXAMPLES = 250
# At least this share of the drawn requests must be of the compiled path's shape with
# every argument within limits: the property is about that path.
COMPILED_FLOOR = 0.3
# The operation's call budget, as configured by default: beyond the drawn requests
# that the compiled path may answer (see the budget's test below).
MAX_CALLS = LimitsSettings().max_calls

DEMO = REPO_ROOT / "config" / "demo.toml"
# Per use case of the demo: lines added to its table (fallback chains and metadata).
_ADDED = {
    "recommendedForYou": [
        'fallback = ["userPersonalization"]',
        'fallback_items = ["item-0001", "item-0002", "item-0003"]',
    ],
    "userPersonalization": ['metadata_columns = ["CATEGORY"]'],
    "customersWhoViewed": ['fallback = ["similarItems", "bestSellers"]'],
    "popularity": ['fallback = ["mostViewed"]'],
    "mostViewed": ['fallback_items = ["item-0004", "item-0005"]'],
    "personalizedRanking": ["fallback_to_input = true"],
}
# What the emulator fails, by request body member: each kind of upstream error once.
NOT_FOUND_USER, REJECTED_USER, THROTTLED_USER = "user-0013", "user-0014", "user-0015"
FAILING_ITEM = "item-0013"
REFUSED_NUM_RESULTS = 7
FAULT_RULES = [
    {"match": {"userId": NOT_FOUND_USER}, "error": "ResourceNotFoundException"},
    {"match": {"userId": REJECTED_USER}, "error": "InvalidInputException"},
    {"match": {"userId": THROTTLED_USER}, "error": "ThrottlingException"},
    {"match": {"itemId": FAILING_ITEM}, "error": "InternalFailure"},
    {"match": {"numResults": REFUSED_NUM_RESULTS}, "error": "AccessDeniedException", "status": 403},
]
STEERING = Steering(
    users=(NOT_FOUND_USER, REJECTED_USER, THROTTLED_USER),
    items=(FAILING_ITEM,),
    num_results=(REFUSED_NUM_RESULTS,),
)
Bodies = tuple[bytes, bytes]
RECOMMENDATION_ID = re.compile(rb"RID-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# A scroll cursor: random per window and signed with each process's own secret.
CURSOR = re.compile(rb'(?<="endCursor":")[A-Za-z0-9_-]+(?=")')

EQUIVALENCE = settings(BOUNDED, max_examples=EXAMPLES)


def _config(directory: Path) -> Path:
    text = DEMO.read_text(encoding="utf-8")
    for use_case, lines in _ADDED.items():
        header = f"[use_cases.{use_case}]\n"
        assert text.count(header) == 1, f"the demo configuration has no {header.strip()}"
        text = text.replace(header, header + "".join(f"{line}\n" for line in lines))
    path = directory / "equivalence.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Pair:
    """The shipped app and the reference, what they serve, and one client for both."""

    shipped: str
    reference: str
    graph: Graph
    client: httpx.Client


@pytest.fixture(scope="module")
def faulty_emulator(emulator: Emulator) -> Iterator[Emulator]:
    emulator.reset()
    emulator.faults(rules=FAULT_RULES)
    yield emulator
    emulator.reset()


@pytest.fixture(scope="module")
def equivalence_env(
    tmp_path_factory: pytest.TempPathFactory, faulty_emulator: Emulator
) -> dict[str, str]:
    """What both subgraphs run with: the configuration, the backend and its timeouts."""
    return {
        "SUBGRAPH_CONFIG": str(_config(tmp_path_factory.mktemp("equivalence"))),
        "SUBGRAPH_BACKEND": "personalize",
        "AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME": faulty_emulator.url,
        "SUBGRAPH_BREAKER__FAILURES": "0",
        # Generous: on a busy machine one server's call must not time out where the
        # other's does not.
        "SUBGRAPH_PERSONALIZE__READ_TIMEOUT": "10",
        "SUBGRAPH_PERSONALIZE__DEADLINE": "30",
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture(scope="module")
def shipped(logs: Path, equivalence_env: dict[str, str]) -> Iterator[Subgraph]:
    yield from start_subgraph(logs, "subgraph-shipped", equivalence_env)


@pytest.fixture(scope="module")
def reference(logs: Path, equivalence_env: dict[str, str]) -> Iterator[Subgraph]:
    """The same app with `server.compiled_path` off: graphql-core and Strawberry only."""
    env = {**equivalence_env, "SUBGRAPH_SERVER__COMPILED_PATH": "false"}
    yield from start_subgraph(logs, "subgraph-reference", env)


@pytest.fixture(scope="module")
def pair(shipped: Subgraph, reference: Subgraph, equivalence_env: dict[str, str]) -> Iterator[Pair]:
    with httpx.Client(timeout=30.0) as client:
        url = f"{shipped.url}/graphql"
        graph = load_graph(live_schema(client, url), Path(equivalence_env["SUBGRAPH_CONFIG"]))
        yield Pair(url, f"{reference.url}/graphql", graph, client)


@dataclass
class Seen:
    """How many requests were drawn, of the compiled path's shape, and answered with
    errors in another order (by sending)."""

    requests: int = 0
    compiled: int = 0
    reordered: dict[str, int] = field(default_factory=dict)


def send(client: httpx.Client, url: str, drawn: Drawn) -> httpx.Response:
    """The drawn request, counted in the property tests' closing note."""
    started = time.perf_counter()
    response = _send(client, url, drawn)
    TALLY.seconds += time.perf_counter() - started
    TALLY.operations += 1
    TALLY.calls += drawn.calls
    TALLY.statuses[response.status_code] = TALLY.statuses.get(response.status_code, 0) + 1
    return response


def _send(client: httpx.Client, url: str, drawn: Drawn) -> httpx.Response:
    headers = {} if drawn.accept is None else {"accept": drawn.accept}
    params: dict[str, Any] = {"query": drawn.query}
    if drawn.variables is not None:
        params["variables"] = drawn.variables
    if drawn.operation_name is not None:
        params["operationName"] = drawn.operation_name
    if drawn.method == "GET":
        if "variables" in params:
            params["variables"] = orjson.dumps(params["variables"]).decode()
        return client.get(url, params=params, headers=headers)
    headers["content-type"] = "application/json"
    return client.post(url, content=orjson.dumps(params), headers=headers)


def shown(*responses: httpx.Response) -> list[bytes]:
    """One server's bodies, each recommendationId and scroll cursor replaced by its rank
    of first appearance across them."""
    ranks: dict[bytes, bytes] = {}

    def rank(match: re.Match[bytes]) -> bytes:
        return ranks.setdefault(match.group(0), b"RID-%d" % len(ranks))

    return [
        CURSOR.sub(rank, RECOMMENDATION_ID.sub(rank, response.content)) for response in responses
    ]


def errors_sorted(body: bytes) -> bytes:
    """The body re-encoded with its errors in one canonical order, all else in place."""
    decoded = orjson.loads(body)
    if isinstance(decoded, dict) and isinstance(decoded.get("errors"), list):
        decoded["errors"] = sorted(decoded["errors"], key=orjson.dumps)
    return orjson.dumps(decoded)


def difference(shipped: Any, reference: Any, path: str = "") -> str:
    """Where two decoded answers first differ, and how."""
    if isinstance(shipped, dict) and isinstance(reference, dict):
        if list(shipped) != list(reference):
            return f"at {path or '/'}: keys {list(shipped)} (shipped) vs {list(reference)}"
        for key in shipped:
            if shipped[key] != reference[key]:
                return difference(shipped[key], reference[key], f"{path}/{key}")
    if isinstance(shipped, list) and isinstance(reference, list) and path != "/errors":
        if len(shipped) != len(reference):
            return f"at {path}: {len(shipped)} entries (shipped) vs {len(reference)}"
        for index, (mine, theirs) in enumerate(zip(shipped, reference, strict=True)):
            if mine != theirs:
                return difference(mine, theirs, f"{path}/{index}")
    if path.startswith("/errors/"):
        path = "/errors"
    return f"at {path or '/'}:\n  shipped:   {shipped!r:.6000}\n  reference: {reference!r:.6000}"


def describe(drawn: Drawn) -> str:
    variables = orjson.dumps(drawn.variables).decode()
    return (
        f"{drawn.method} accept={drawn.accept!r} operationName={drawn.operation_name!r}\n"
        f"query: {drawn.query}\nvariables: {variables[:3000]}"
    )


def same(
    drawn: Drawn, sending: str, responses: tuple[httpx.Response, httpx.Response], bodies: Bodies
) -> bool:
    """Whether the shipped app answered as the reference did; False when only the order
    of the errors differs; anything else fails the test."""
    shipped, reference = responses
    context = f"the {sending} sending of\n{describe(drawn)}"
    assert (shipped.status_code, shipped.headers.get("content-type")) == (
        reference.status_code,
        reference.headers.get("content-type"),
    ), context
    if bodies[0] == bodies[1]:
        return True
    # The one difference tolerated: the same errors in another order. graphql-core lists
    # errors as fields fail, which with concurrent calls (and retries after a random
    # backoff) varies from run to run, so no order can be required of the other path;
    # the compiled path lists them as their outcomes became known (test below).
    canonical = errors_sorted(bodies[0]), errors_sorted(bodies[1])
    assert canonical[0] == canonical[1], (
        f"{context}\n{difference(orjson.loads(canonical[0]), orjson.loads(canonical[1]))}"
    )
    return False


def test_the_compiled_path_answers_as_graphql_core(pair: Pair) -> None:
    seen = Seen()

    @EQUIVALENCE
    @given(drawn=requests(pair.graph, STEERING))
    def answers_agree(drawn: Drawn) -> None:
        seen.requests += 1
        seen.compiled += drawn.compiled
        event("compiled shape, within limits" if drawn.compiled else "graphql-core's")
        for reason in drawn.declined:
            event(f"may be declined: {reason}")
        answers = [
            send(pair.client, url, drawn)
            for url in (pair.shipped, pair.reference, pair.shipped, pair.reference)
        ]
        shipped = shown(answers[0], answers[2])
        reference = shown(answers[1], answers[3])
        for sending, index in (("first", 0), ("second", 1)):
            responses = (answers[2 * index], answers[2 * index + 1])
            if not same(drawn, sending, responses, (shipped[index], reference[index])):
                seen.reordered[sending] = seen.reordered.get(sending, 0) + 1
                event(f"errors in another order ({sending} sending)")

    answers_agree()
    assert seen.requests >= EXAMPLES, seen
    # Not vacuous: nothing tells from outside which path answered, so the floor is on
    # the requests of the shape the compiled path must take (`documents` docstring).
    assert seen.compiled >= COMPILED_FLOOR * seen.requests, seen


def users(*keys: str) -> str:
    """A literal list of user representations."""
    return ", ".join(f'{{__typename: "User", id: "{key}"}}' for key in keys)


def answers_as_graphql_core(pair: Pair, query: str) -> None:
    """The first sending (graphql-core's on both servers) and the next two (the compiled
    path's on the shipped app) answer byte for byte alike, errors in the same order."""
    drawn = Drawn("POST", query, None, None, None, declined=(), calls=0)
    for sending in ("first", "second", "third"):
        responses = (
            send(pair.client, pair.shipped, drawn),
            send(pair.client, pair.reference, drawn),
        )
        bodies = (shown(responses[0])[0], shown(responses[1])[0])
        assert same(drawn, sending, responses, bodies), f"the {sending} sending: errors reordered"


# Once a discrepancy: the errors' order. Minimal case, deterministic: a field that
# fails upstream (rejected: the emulator's rule for REJECTED_USER), then, in field
# order, the first field beyond the operation's call budget, refused before any call is
# made. graphql-core lists the budget's error first, as that field fails first; the
# compiled path used to list errors in field order, and now lists them in the order
# their outcomes became known. The property above still tolerates a different order of
# the same errors, as it must while the reference's own order depends on timing (two
# upstream failures arriving in the same instant), and counts it by sending.
def test_errors_are_listed_in_the_order_the_fields_fail(pair: Pair) -> None:
    # Distinct, unknown users, so that no answer is stored and each costs a call.
    others = [f"budget-{n}" for n in range(MAX_CALLS)]
    answers_as_graphql_core(
        pair,
        f"{{ _entities(representations: [{users(REJECTED_USER, *others)}]) {{"
        " ... on User { recommendations(useCase: USER_PERSONALIZATION) { source } } } }",
    )


# Once a discrepancy: who is refused when the call budget runs out. Minimal case,
# deterministic: two `_entities` roots, the first with several representations, one
# call beyond the budget between them. graphql-core reaches the fields of a list of
# several entities after the roots that follow it (those of a list of one, at once), so
# it spends the budget on the second root first and refuses the first root's last
# entity. The compiled path spends in field order, so it now declines an operation
# over budget whose spending order could differ (schema.compiled.path), and
# graphql-core answers. The drawn requests stay within the default budget, so the
# property above does not meet this case.
def test_the_call_budget_is_spent_in_the_order_graphql_core_spends_it(pair: Pair) -> None:
    first = [f"budget-{n}" for n in range(MAX_CALLS)]
    answers_as_graphql_core(
        pair,
        f"{{ a: _entities(representations: [{users(*first)}]) {{"
        " ... on User { recommendations(numResults: 1) { source } } }"
        f" b: _entities(representations: [{users('budget-last')}]) {{"
        " ... on User { recommendations(numResults: 1) { source } } } }",
    )


# recommendationPage is not of the compiled path's shape (a list of sections, one call
# each, deduplicated after they all settle): the shipped app declines it and its
# graphql-core (with direct resolvers and item lists) must answer as the reference
# does, for pages on each host, in operations mixing it with fields the compiled path
# would take, with failing, fallen-back and refused sections.
PAGE_SELECTION = (
    "{ __typename recommendationId source items { itemId score promotionName reasons"
    " item { __typename id } metadata { key value } } }"
)
# Per page of a user: the user and the sections.
PAGES = {
    "user home page": (
        "user-0021",
        "{useCase: RECOMMENDED_FOR_YOU, numResults: 6}, {useCase: USER_PERSONALIZATION,"
        " numResults: 6}, {useCase: BEST_SELLERS, numResults: 6, filter: {maxPrice: {maxPrice:"
        ' 80}}}, {useCase: PERSONALIZED_RANKING, itemIds: ["item-0001", "item-0002"]}',
    ),
    "failing and fallen-back sections": (
        NOT_FOUND_USER,
        "{useCase: RECOMMENDED_FOR_YOU, numResults: 4},"
        f' {{useCase: SIMILAR_ITEMS, itemId: "{FAILING_ITEM}"}}, {{useCase: CUSTOMERS_WHO_VIEWED,'
        f' itemId: "{FAILING_ITEM}", numResults: 5}}, {{useCase: MOST_VIEWED, numResults: 3}},'
        " {useCase: POPULARITY}",
    ),
    "rejected upstream and refused sections": (
        REJECTED_USER,
        "{useCase: BEST_SELLERS, numResults: 3}, {useCase: USER_PERSONALIZATION, numResults: 60},"
        ' {useCase: RECOMMENDED_FOR_YOU}, {useCase: BEST_SELLERS, itemIds: ["item-0001"]}',
    ),
}


# The codes each page's answer holds (the reference's), so that the comparison is not
# of answers that miss what they were drawn up to show.
PAGE_CODES = {
    "user home page": [],
    # Every call carries the user the emulator does not know: similarItems has no
    # fallback; the other sections fall back (customersWhoViewed past a failing call).
    "failing and fallen-back sections": ["NOT_CONFIGURED"],
    "rejected upstream and refused sections": ["BAD_USER_INPUT"] * 4,
}


@pytest.mark.parametrize("name", list(PAGES))
def test_a_page_answers_as_graphql_core(pair: Pair, name: str) -> None:
    query = (
        f"{{ _entities(representations: [{users(PAGES[name][0])}]) {{ __typename ... on User"
        f" {{ recommendationPage(sections: [{PAGES[name][1]}]) {PAGE_SELECTION} }} }}"
        ' home: recommendationPage(userId: "user-0022", sections: [{useCase: POPULARITY,'
        " numResults: 5}, {useCase: RECOMMENDED_FOR_YOU, numResults: 5}]) { items { itemId } }"
        " popularItems(numResults: 3) { items { itemId } } }"
    )
    answers_as_graphql_core(pair, query)
    raw = pair.client.post(pair.reference, json={"query": query}).content
    body = orjson.loads(raw)
    assert (b'"FALLBACK"' in raw) == (name == "failing and fallen-back sections")
    assert sorted(e["extensions"]["code"] for e in body.get("errors", [])) == PAGE_CODES[name]
    assert len(body["data"]["home"]) == 2


def test_a_product_page_and_refused_pages_answer_as_graphql_core(pair: Pair) -> None:
    answers_as_graphql_core(
        pair,
        '{ _entities(representations: [{__typename: "Item", id: "item-0031"}]) {'
        ' ... on Item { recommendationPage(userId: "user-0031", sections: ['
        "{useCase: SIMILAR_ITEMS, numResults: 5}, {useCase: CUSTOMERS_WHO_VIEWED, numResults: 5},"
        " {useCase: BEST_SELLERS_WITH_DETAILS, numResults: 3}]) "
        f"{PAGE_SELECTION} }} }} none: recommendationPage(sections: []) {{ source }}"
        " anonymous: recommendationPage(sections: [{useCase: RECOMMENDED_FOR_YOU}])"
        " { source } }",
    )


# A list that scrolls (pageInfo selected, or after given) is not of the compiled path's
# shape: its renderer declines pageInfo and its planner declines after, so the shipped
# app's graphql-core (with direct resolvers and item lists) answers, as the reference.
# Cursors differ by process (random window ids, each process's random secret): `shown`
# ranks them as it ranks recommendationIds, and a later page is asked of each server
# with its own cursor.
SCROLL_SELECTION = (
    "{ __typename recommendationId source items { itemId score item { id } }"
    " pageInfo { __typename endCursor hasNextPage } }"
)


def _scroll_query(after: str = "") -> str:
    return (
        f"{{ _entities(representations: [{users('user-0041', NOT_FOUND_USER, REJECTED_USER)}])"
        f" {{ ... on User {{ recommendations(numResults: 6{after}) {SCROLL_SELECTION}"
        f" plain: recommendations(numResults: 3) {{ items {{ itemId }} }} }} }}"
        f" popularItems(numResults: 4{after}) {SCROLL_SELECTION} }}"
    )


def test_first_pages_of_a_scroll_answer_as_graphql_core(pair: Pair) -> None:
    query = _scroll_query()
    answers_as_graphql_core(pair, query)
    body = orjson.loads(pair.client.post(pair.reference, json={"query": query}).content)
    # Drawn up to show a scroll, a fallen-back scroll and a rejected one (and its plain
    # sibling, rejected too).
    entities = body["data"]["_entities"]
    assert entities[0]["recommendations"]["pageInfo"]["hasNextPage"] is True
    assert entities[1]["recommendations"]["source"] == "FALLBACK"
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"] * 2


def test_later_pages_and_refused_cursors_answer_as_graphql_core(pair: Pair) -> None:
    user = "user-0042"
    first = (
        f"{{ _entities(representations: [{users(user)}]) {{ ... on User {{"
        f" recommendations(numResults: 5%s) {SCROLL_SELECTION} }} }} }}"
    )
    bodies = []
    for url in (pair.shipped, pair.reference):
        page = orjson.loads(pair.client.post(url, json={"query": first % ""}).content)
        cursor = page["data"]["_entities"][0]["recommendations"]["pageInfo"]["endCursor"]
        later = pair.client.post(url, json={"query": first % f', after: "{cursor}"'})
        bodies.append(shown(later)[0])
        flipped = cursor[:10] + ("A" if cursor[10] != "A" else "B") + cursor[11:]
        refused = pair.client.post(url, json={"query": first % f', after: "{flipped}"'})
        bodies.append(refused.content)
    assert bodies[0] == bodies[2], difference(orjson.loads(bodies[0]), orjson.loads(bodies[2]))
    assert bodies[1] == bodies[3]
    assert b"BAD_USER_INPUT" in bodies[1]
    assert b'"hasNextPage":true' in bodies[0]
    # A cursor no server made, through a variable: graphql-core's on both.
    answers_as_graphql_core(pair, _scroll_query(', after: "bm90LWEtY3Vyc29y"'))


# cartRecommendations is not of the compiled path's shape either (one call per cart
# item, fused after they all settle, errors beside the data): the shipped app declines
# it, and its graphql-core must answer as the reference does, beside fields the
# compiled path would take, with a failing seed, a re-ranked cart, a fallen-back seed
# and refused carts.
CART_SELECTION = (
    "{ __typename recommendationId source items { itemId score promotionName reasons"
    " item { __typename id } metadata { key value } } }"
)
CARTS = {
    "a cart and a failing seed": (
        f'{{ cart: cartRecommendations(itemIds: ["item-0001", "{FAILING_ITEM}", "item-0002",'
        f' "item-0001"], numResults: 8) {CART_SELECTION}'
        f" popularItems(numResults: 3) {{ items {{ itemId }} }} }}",
        ["UPSTREAM_UNAVAILABLE"],
    ),
    "re-ranked, fallen back and refused": (
        '{ mine: cartRecommendations(itemIds: ["item-0003", "item-0004"], userId: "user-0051",'
        f" numResults: 6) {CART_SELECTION}"
        f' viewed: cartRecommendations(itemIds: ["item-0005"], userId: "{NOT_FOUND_USER}",'
        f" useCase: CUSTOMERS_WHO_VIEWED, numResults: 4) {CART_SELECTION}"
        " empty: cartRecommendations(itemIds: []) { source }"
        ' anonymous: cartRecommendations(itemIds: ["item-0001"], useCase: CUSTOMERS_WHO_VIEWED)'
        " { source } }",
        # The unknown user's re-ranking fails: the merged order stands, with its error.
        ["BAD_USER_INPUT", "BAD_USER_INPUT", "NOT_CONFIGURED"],
    ),
    "every seed failing": (
        f'{{ cartRecommendations(itemIds: ["{FAILING_ITEM}"], userId: "user-0052")'
        f" {CART_SELECTION} popularItems(numResults: 2) {{ source }} }}",
        ["UPSTREAM_UNAVAILABLE"],
    ),
}


@pytest.mark.parametrize("name", list(CARTS))
def test_a_cart_answers_as_graphql_core(pair: Pair, name: str) -> None:
    query, expected = CARTS[name]
    answers_as_graphql_core(pair, query)
    raw = pair.client.post(pair.reference, json={"query": query}).content
    body = orjson.loads(raw)
    # Not vacuous: each answer holds what it was drawn up to show.
    assert sorted(e["extensions"]["code"] for e in body.get("errors", [])) == expected, body
    data = body["data"]
    if name == "a cart and a failing seed":
        assert len(data["cart"]["items"]) == 8
    elif name == "re-ranked, fallen back and refused":
        assert data["mine"]["recommendationId"] is not None
        assert data["viewed"]["source"] == "FALLBACK"
    else:
        assert data["cartRecommendations"] is None


# A field asked for an experiment (resolvers.experiments) is not of the compiled path's
# shape: its planner declines `experiment` (and `sessionId`) and its renderer declines
# `experiment` and `attributionSource`, so the shipped app's graphql-core answers, as
# the reference: variants, a fallen-back and a rejected variant, a refusal (useCase and
# experiment together), beside fields the compiled path would take.
EXPERIMENT_SELECTION = (
    "{ __typename recommendationId source experiment { __typename name variant }"
    " attributionSource items { itemId score item { id } } }"
)


def test_experiment_fields_answer_as_graphql_core(pair: Pair) -> None:
    query = (
        f"{{ _entities(representations: [{users('user-0051', 'user-0052', NOT_FOUND_USER)},"
        f" {users(REJECTED_USER)}]) {{ ... on User {{"
        f" recommendations(experiment: HOME_HERO, numResults: 4) {EXPERIMENT_SELECTION}"
        " plain: recommendations(numResults: 3) { items { itemId } } } }"
        ' both: _entities(representations: [{__typename: "User", id: "user-0053"}]) {'
        " ... on User { recommendations(experiment: HOME_HERO, useCase: RECOMMENDED_FOR_YOU)"
        " { source } } } popularItems(numResults: 3) { items { itemId } } }"
    )
    answers_as_graphql_core(pair, query)
    body = orjson.loads(pair.client.post(pair.reference, json={"query": query}).content)
    # Drawn up to show answered variants, a fallen-back one and refusals.
    entities = body["data"]["_entities"]
    assert {e["recommendations"]["experiment"]["name"] for e in entities[:3]} == {"HOME_HERO"}
    assert entities[2]["recommendations"]["source"] == "FALLBACK"
    assert sorted(e["extensions"]["code"] for e in body["errors"]) == ["BAD_USER_INPUT"] * 3
