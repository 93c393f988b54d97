"""Experiments through real servers: bucketing, exposures and attributed events in
/metrics, eventAttributionSource arriving at Personalize (the emulator), fallbacks that
still count, and a switched-off experiment."""

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from domain.experiments import assign
from local_personalize.resources import DEMO_TRACKING_ID
from settings import DEMO_CONFIG
from tests.conftest import Emulator, Subgraph, codes, start_subgraph
from tests.servers import python

PICKS = """query Picks($reps: [_Any!]!) { _entities(representations: $reps) {
  ... on User { id recommendations(experiment: HOME_HERO, numResults: 5) {
    recommendationId source experiment { name variant } attributionSource
    items { itemId } } } } }"""
RECORD = """mutation Record($user: ID, $session: String!, $events: [EventInput!]!) {
  recordEvents(userId: $user, sessionId: $session, events: $events) { accepted delivered } }"""


def picks(subgraph: Subgraph, users: list[str]) -> list[dict[str, Any]]:
    reps = [{"__typename": "User", "id": u} for u in users]
    body = subgraph.query(PICKS, {"reps": reps})
    assert "errors" not in body, body
    return list(body["data"]["_entities"])


def samples(subgraph: Subgraph) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    text = httpx.get(f"{subgraph.url}/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def exposures(subgraph: Subgraph, experiment: str, variant: str) -> float:
    for (name, labels), value in samples(subgraph).items():
        found = dict(labels)
        if (
            name == "personalize_subgraph_experiment_exposures_total"
            and found.get("experiment") == experiment
            and found.get("variant") == variant
        ):
            return value
    return 0.0


def attributed(subgraph: Subgraph, source: str, event_type: str) -> float:
    key = (
        "personalize_subgraph_attributed_events_total",
        (("event_type", event_type), ("source", source)),
    )
    return samples(subgraph).get(key, 0.0)


@pytest.fixture(scope="module")
def tracked(logs: Path, emulator: Emulator) -> Iterator[Subgraph]:
    """The AWS path: calls and PutEvents to the emulator, through the real clients."""
    yield from start_subgraph(
        logs,
        "subgraph-experiments",
        {
            "SUBGRAPH_BACKEND": "personalize",
            "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": emulator.url,
            "SUBGRAPH_EVENTS__TRACKING_ID": DEMO_TRACKING_ID,
            "SUBGRAPH_EVENTS__ENDPOINT_URL": emulator.url,
            # recordEvents waits for delivery long enough for a slow machine.
            "SUBGRAPH_EVENTS__WAIT_MS": "5000",
            "SUBGRAPH_LIMITS__MAX_CALLS": "1000",
        },
    )


@pytest.fixture(scope="module")
def configured(
    logs: Path, tmp_path_factory: pytest.TempPathFactory, emulator: Emulator
) -> Iterator[Subgraph]:
    """The demo against the emulator with more experiments: one switched off, one whose
    treatment (newArrivals, not deployed) always falls back, one on `related` whose
    treatment has a filter."""
    extra = """
[experiments.OFF]
enabled = false
[experiments.OFF.variants.control]
use_case = "recommendedForYou"
[experiments.OFF.variants.other]
use_case = "userPersonalization"
weight = 99

[experiments.NEW_ARRIVALS]
salt = "x"
[experiments.NEW_ARRIVALS.variants.control]
use_case = "bestSellers"
[experiments.NEW_ARRIVALS.variants.fresh]
use_case = "newArrivals"
attribution_source = "arrivals-v1"

[experiments.RELATED_TEST]
[experiments.RELATED_TEST.variants.similar]
use_case = "similarItems"
weight = 0.5
[experiments.RELATED_TEST.variants.viewed]
use_case = "customersWhoViewed"
weight = 0.5
filter = "excludePurchased"
"""
    path = tmp_path_factory.mktemp("experiments") / "config.toml"
    path.write_text(DEMO_CONFIG.read_text() + extra)
    yield from start_subgraph(
        logs,
        "subgraph-experiments-config",
        {
            "SUBGRAPH_CONFIG": str(path),
            "SUBGRAPH_BACKEND": "personalize",
            "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": emulator.url,
            "SUBGRAPH_CACHE__ENABLED": "false",
        },
    )


USERS = [f"user-{n:04d}" for n in range(1, 201)]


def test_each_user_gets_the_same_variant_every_time_and_exposures_count(
    tracked: Subgraph,
) -> None:
    before = {v: exposures(tracked, "HOME_HERO", v) for v in ("control", "campaign")}
    first = picks(tracked, USERS)
    again = picks(tracked, USERS)
    variants = {}
    for one, two in zip(first, again, strict=True):
        answer = one["recommendations"]
        variant = answer["experiment"]["variant"]
        variants[one["id"]] = variant
        assert answer["experiment"] == {"name": "HOME_HERO", "variant": variant}
        assert answer["attributionSource"] == f"HOME_HERO:{variant}"
        assert two["recommendations"]["experiment"]["variant"] == variant
        assert len(answer["items"]) == 5
        # The bucketing is domain.experiments', with the demo's salt and 50/50 weights.
        expected = ["control", "campaign"][assign("HOME_HERO", "2026-12", one["id"], [50, 50])]
        assert variant == expected
    counts = {v: list(variants.values()).count(v) for v in ("control", "campaign")}
    assert counts["control"] > 60
    assert counts["campaign"] > 60
    for variant, count in counts.items():
        assert exposures(tracked, "HOME_HERO", variant) - before[variant] == 2 * count


def test_use_case_and_experiment_together_are_refused(tracked: Subgraph) -> None:
    body = tracked.query(
        '{ _entities(representations: [{__typename: "User", id: "user-0001"}]) { ... on User {'
        " recommendations(experiment: HOME_HERO, useCase: RECOMMENDED_FOR_YOU) { source } } } }"
    )
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "useCase or experiment" in body["errors"][0]["message"]


def test_attributed_events_reach_the_emulator_and_metrics(
    tracked: Subgraph, fresh_emulator: Emulator
) -> None:
    answer = picks(tracked, ["user-0007"])[0]["recommendations"]
    source = answer["attributionSource"]
    before = attributed(tracked, source, "click")
    event = {
        "eventType": "click",
        "itemId": answer["items"][0]["itemId"],
        "recommendationId": answer["recommendationId"],
        "attributionSource": source,
    }
    body = tracked.query(RECORD, {"user": "user-0007", "session": "s-7", "events": [event] * 2})
    assert body == {"data": {"recordEvents": {"accepted": 2, "delivered": True}}}
    received = httpx.get(f"{fresh_emulator.url}/_emulator/events").json()
    assert [e["eventAttributionSource"] for e in received["events"]] == [source, source]
    # The engine behind the emulator recorded them by source and type.
    assert received["attributed"] == {source: {"click": 2}}
    assert attributed(tracked, source, "click") - before == 2
    # A source no variant has is counted, under "other".
    stranger = {**event, "attributionSource": "somebody-else"}
    other = attributed(tracked, "other", "click")
    tracked.query(RECORD, {"user": "user-0007", "session": "s-7", "events": [stranger]})
    assert attributed(tracked, "other", "click") - other == 1


@pytest.mark.parametrize("source", ["", "   ", "é-source", "tab\there", "x" * 1025])
def test_invalid_attribution_sources_are_refused(
    tracked: Subgraph, fresh_emulator: Emulator, source: str
) -> None:
    event = {"eventType": "click", "itemId": "item-0001", "attributionSource": source}
    body = tracked.query(RECORD, {"user": "user-0007", "session": "s-7", "events": [event]})
    assert codes(body) == ["BAD_USER_INPUT"], body
    assert "events[0].attributionSource" in body["errors"][0]["message"]
    assert httpx.get(f"{fresh_emulator.url}/_emulator/events").json()["events"] == []


def test_the_longest_printable_source_is_taken(tracked: Subgraph, fresh_emulator: Emulator) -> None:
    source = " ~" + "a" * 1022
    event = {"eventType": "click", "itemId": "item-0001", "attributionSource": source}
    body = tracked.query(RECORD, {"user": "user-0007", "session": "s-7", "events": [event]})
    assert body == {"data": {"recordEvents": {"accepted": 1, "delivered": True}}}
    received = httpx.get(f"{fresh_emulator.url}/_emulator/events").json()["events"]
    assert [e["eventAttributionSource"] for e in received] == [source]


POPULAR = """query Popular($session: ID, $user: ID) {
  popularItems(experiment: NEW_ARRIVALS, sessionId: $session, userId: $user, numResults: 3) {
    source experiment { name variant } attributionSource items { itemId } } }"""


def test_an_anonymous_session_is_bucketed_and_a_failing_variant_still_counts(
    configured: Subgraph,
) -> None:
    sessions = [f"session-{n}" for n in range(40)]
    seen = set()
    for session in sessions:
        variant = ["control", "fresh"][assign("NEW_ARRIVALS", "x", session, [1, 1])]
        before = exposures(configured, "NEW_ARRIVALS", variant)
        body = configured.query(POPULAR, {"session": session})
        assert "errors" not in body, body
        answer = body["data"]["popularItems"]
        assert answer["experiment"] == {"name": "NEW_ARRIVALS", "variant": variant}
        if variant == "fresh":
            # newArrivals is not deployed: its fallback answers, the exposure counts.
            assert answer["source"] == "FALLBACK"
            assert answer["attributionSource"] == "arrivals-v1"
        else:
            assert answer["source"] == "PERSONALIZE"
            assert answer["attributionSource"] == "NEW_ARRIVALS:control"
        assert exposures(configured, "NEW_ARRIVALS", variant) - before == 1
        seen.add(variant)
    assert seen == {"control", "fresh"}
    # Neither a user nor a session: nothing to bucket.
    body = configured.query(POPULAR, {})
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "sessionId" in body["errors"][0]["message"]


def test_a_switched_off_experiment_answers_with_its_control_and_counts_nothing(
    configured: Subgraph,
) -> None:
    query = """{ _entities(representations: [{__typename: "User", id: "user-0003"}]) {
      ... on User { off: recommendations(experiment: OFF, numResults: 5) {
        experiment { name variant } attributionSource items { itemId } }
      control: recommendations(useCase: RECOMMENDED_FOR_YOU, numResults: 5) {
        items { itemId } } } } }"""
    for _ in range(3):
        body = configured.query(query)
        assert "errors" not in body, body
        user = body["data"]["_entities"][0]
        assert user["off"]["experiment"] == {"name": "OFF", "variant": "control"}
        assert user["off"]["attributionSource"] is None
        assert user["off"]["items"] == user["control"]["items"]
    assert exposures(configured, "OFF", "control") == 0
    assert exposures(configured, "OFF", "other") == 0


def test_the_readout_reads_a_running_subgraph(tracked: Subgraph) -> None:
    answers = picks(tracked, [f"user-{n:04d}" for n in range(300, 340)])
    for answer in answers:
        shown = answer["recommendations"]
        event = {
            "eventType": "click",
            "itemId": shown["items"][0]["itemId"],
            "attributionSource": shown["attributionSource"],
        }
        tracked.query(RECORD, {"user": answer["id"], "session": "s", "events": [event]})
    done = subprocess.run(
        [*python("-m", "observability.readout"), "--metrics", f"{tracked.url}/metrics"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith("experiment HOME_HERO:")
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    for variant in ("control", "campaign"):
        assert float(rows[variant][1]) == exposures(tracked, "HOME_HERO", variant)
        assert float(rows[variant][2]) == attributed(tracked, f"HOME_HERO:{variant}", "click")


def test_page_sections_take_experiments(configured: Subgraph) -> None:
    user = "user-0011"
    variant = ["control", "campaign"][assign("HOME_HERO", "2026-12", user, [50, 50])]
    before = exposures(configured, "HOME_HERO", variant)
    body = configured.query(
        f'{{ _entities(representations: [{{__typename: "User", id: "{user}"}}]) {{'
        " ... on User { recommendationPage(sections: [{experiment: HOME_HERO, numResults: 4},"
        " {useCase: BEST_SELLERS, numResults: 4}]) { source experiment { name variant }"
        " attributionSource items { itemId } } } } }"
    )
    assert "errors" not in body, body
    page = body["data"]["_entities"][0]["recommendationPage"]
    assert page[0]["experiment"] == {"name": "HOME_HERO", "variant": variant}
    assert page[0]["attributionSource"] == f"HOME_HERO:{variant}"
    assert page[1]["experiment"] is None
    assert page[1]["attributionSource"] is None
    shown = [i["itemId"] for section in page for i in section["items"]]
    assert len(shown) == len(set(shown)) == 8
    assert exposures(configured, "HOME_HERO", variant) - before == 1
    # The variant's use case answers the section, as the field asked for it would.
    direct = configured.query(
        f'{{ _entities(representations: [{{__typename: "User", id: "{user}"}}]) {{'
        " ... on User { recommendations(experiment: HOME_HERO, numResults: 4)"
        " { items { itemId } } } } }"
    )
    assert page[0]["items"] == direct["data"]["_entities"][0]["recommendations"]["items"]


def test_anonymous_page_sections_bucket_by_session_and_refusals_are_coded(
    configured: Subgraph,
) -> None:
    session = "page-session-3"
    variant = ["control", "fresh"][assign("NEW_ARRIVALS", "x", session, [1, 1])]
    body = configured.query(
        f'{{ recommendationPage(sessionId: "{session}", sections: ['
        "{experiment: NEW_ARRIVALS, numResults: 3},"
        " {experiment: NEW_ARRIVALS, useCase: MOST_VIEWED}, {numResults: 3}])"
        " { experiment { variant } items { itemId } } }"
    )
    page = body["data"]["recommendationPage"]
    assert page[0]["experiment"] == {"variant": variant}
    assert page[1] is None
    assert page[2] is None
    errors = {tuple(e["path"]): e for e in body["errors"]}
    assert errors[("recommendationPage", 1)]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "not both" in errors[("recommendationPage", 1)]["message"]
    assert "give useCase or experiment" in errors[("recommendationPage", 2)]["message"]
    # Neither a user nor a session: that section is refused, the others answer.
    body = configured.query(
        "{ recommendationPage(sections: [{experiment: NEW_ARRIVALS}, {useCase: MOST_VIEWED,"
        " numResults: 2}]) { items { itemId } } }"
    )
    assert body["data"]["recommendationPage"][0] is None
    assert len(body["data"]["recommendationPage"][1]["items"]) == 2
    assert "sessionId" in body["errors"][0]["message"]


def test_related_takes_an_experiment_with_a_variant_filter(
    configured: Subgraph, fresh_emulator: Emulator
) -> None:
    query = """query Related($user: ID) {
      _entities(representations: [{__typename: "Item", id: "item-0042"}]) {
        ... on Item { related(experiment: RELATED_TEST, userId: $user, numResults: 4) {
          experiment { variant } attributionSource items { itemId } } } } }"""
    seen = set()
    for n in range(1, 13):
        user = f"user-{n:04d}"
        variant = ["similar", "viewed"][assign("RELATED_TEST", "", user, [0.5, 0.5])]
        body = configured.query(query, {"user": user})
        assert "errors" not in body, body
        answer = body["data"]["_entities"][0]["related"]
        assert answer["experiment"] == {"variant": variant}
        assert answer["attributionSource"] == f"RELATED_TEST:{variant}"
        assert len(answer["items"]) == 4
        # The variant's use case answers, with its filter (the query gave none).
        sent = fresh_emulator.requests()[-1]
        arn = sent["body"].get("recommenderArn") or sent["body"].get("campaignArn")
        if variant == "viewed":
            assert arn.endswith("recommender/customers-who-viewed-x")
            assert sent["body"]["filterArn"].endswith("filter/exclude-purchased")
        else:
            assert arn.endswith("campaign/sims")
            assert "filterArn" not in sent["body"]
        seen.add(variant)
    assert seen == {"similar", "viewed"}


def test_the_readout_takes_events_from_the_engine(
    tracked: Subgraph, fresh_emulator: Emulator
) -> None:
    """`--engine`: the events as the engine behind the emulator recorded them (what
    Personalize's metric attributions would report), the exposures from /metrics."""
    answers = picks(tracked, [f"user-{n:04d}" for n in range(400, 420)])
    clicks: dict[str, int] = {}
    for answer in answers:
        shown = answer["recommendations"]
        source = shown["attributionSource"]
        event = {"eventType": "click", "itemId": shown["items"][0]["itemId"]}
        events = [{**event, "attributionSource": source}] * 2
        tracked.query(RECORD, {"user": answer["id"], "session": "s", "events": events})
        clicks[source] = clicks.get(source, 0) + 2
    done = subprocess.run(
        [
            *python("-m", "observability.readout"),
            "--metrics",
            f"{tracked.url}/metrics",
            "--engine",
            fresh_emulator.url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[2:]}
    for variant in ("control", "campaign"):
        # The emulator was reset for this test: only this test's clicks are there.
        assert float(rows[variant][2]) == clicks[f"HOME_HERO:{variant}"]
        assert float(rows[variant][2]) <= attributed(tracked, f"HOME_HERO:{variant}", "click")


SCROLL = """query Scroll($reps: [_Any!]!, $after: String) { _entities(representations: $reps) {
  ... on User { recommendations(experiment: HOME_HERO, numResults: 3, after: $after) {
    experiment { variant } items { itemId } pageInfo { endCursor } } } } }"""
PAGE_SCROLL = """query Page($reps: [_Any!]!, $after: String) { _entities(representations: $reps) {
  ... on User { recommendationPage(sections: [{experiment: HOME_HERO, numResults: 3,
    after: $after}]) { experiment { variant } items { itemId } pageInfo { endCursor } } } } }"""


def _field(body: dict[str, Any]) -> Any:
    assert "errors" not in body, body
    return body["data"]["_entities"][0]["recommendations"]


def _section(body: dict[str, Any]) -> Any:
    assert "errors" not in body, body
    [section] = body["data"]["_entities"][0]["recommendationPage"]
    return section


@pytest.mark.parametrize(
    ("query", "answer", "user"),
    [(SCROLL, _field, "user-0077"), (PAGE_SCROLL, _section, "user-0078")],
    ids=["field", "page-section"],
)
def test_scrolling_an_experiment_s_list_is_one_exposure(
    configured: Subgraph, query: str, answer: Callable[[dict[str, Any]], Any], user: str
) -> None:
    reps = [{"__typename": "User", "id": user}]
    variant = ["control", "campaign"][assign("HOME_HERO", "2026-12", user, [50, 50])]
    before = exposures(configured, "HOME_HERO", variant)
    first = answer(configured.query(query, {"reps": reps}))
    cursor = first["pageInfo"]["endCursor"]
    later = answer(configured.query(query, {"reps": reps, "after": cursor}))
    for page in (first, later):
        assert page["experiment"] == {"variant": variant}
        assert len(page["items"]) == 3
    assert not {i["itemId"] for i in later["items"]} & {i["itemId"] for i in first["items"]}
    # A cursor altered by hand is refused and shows nothing.
    refused = configured.query(query, {"reps": reps, "after": cursor[:-2] + "xx"})
    assert codes(refused) == ["BAD_USER_INPUT"], refused
    # The first page counted; the next page and the refusal did not.
    assert exposures(configured, "HOME_HERO", variant) - before == 1
