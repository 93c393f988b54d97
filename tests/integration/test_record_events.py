"""Mutation.recordEvents: events reach Personalize (the emulator, or the embedded engine),
change the next recommendations, and are never lost to throttling."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_personalize.resources import DEMO_TRACKING_ID
from tests.conftest import Emulator, Subgraph, codes, start_subgraph

USER = "user-0321"
RECORD = """mutation Record($user: ID, $session: String!, $events: [EventInput!]!) {
  recordEvents(userId: $user, sessionId: $session, events: $events) { accepted delivered } }"""
PICKS = f"""{{ _entities(representations: [{{__typename: "User", id: "{USER}"}}]) {{
  ... on User {{ recommendations(numResults: 10, filter: {{excludePurchased: true}}) {{
    recommendationId items {{ itemId }} }} }} }} }}"""


def record(subgraph: Subgraph, events: list[dict[str, Any]], user: str | None = USER) -> Any:
    variables = {"user": user, "session": "session-1", "events": events}
    return subgraph.query(RECORD, variables)


def picks(subgraph: Subgraph) -> tuple[str, list[str]]:
    body = subgraph.query(PICKS)
    assert "errors" not in body, body
    answer = body["data"]["_entities"][0]["recommendations"]
    return answer["recommendationId"], [i["itemId"] for i in answer["items"]]


def put_events_bodies(emulator: Emulator, delivered_only: bool = True) -> list[dict[str, Any]]:
    recent = emulator.requests()
    return [
        r["body"]
        for r in recent
        if r["operation"] == "PutEvents" and (not delivered_only or r.get("fault") is None)
    ]


def tracked_env(emulator: Emulator, wait_ms: int) -> dict[str, str]:
    return {
        "SUBGRAPH_BACKEND": "personalize",
        "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": emulator.url,
        "SUBGRAPH_EVENTS__TRACKING_ID": DEMO_TRACKING_ID,
        "SUBGRAPH_EVENTS__ENDPOINT_URL": emulator.url,
        "SUBGRAPH_EVENTS__QUEUE_SIZE": "3",
        "SUBGRAPH_EVENTS__RETRY_BASE": "0.05",
        "SUBGRAPH_EVENTS__RETRY_CAP": "0.2",
        "SUBGRAPH_EVENTS__WAIT_MS": str(wait_ms),
        # Every answer fresh: the test looks for the effect of events.
        "SUBGRAPH_CACHE__ENABLED": "false",
    }


@pytest.fixture(scope="module")
def tracked(logs: Path, emulator: Emulator) -> Iterator[Subgraph]:
    """The AWS path: PutEvents through aioboto3's personalize-events client to the emulator.
    recordEvents waits up to 5 s for delivery, so `delivered: true` holds on a slow machine."""
    yield from start_subgraph(logs, "subgraph-events", tracked_env(emulator, wait_ms=5000))


@pytest.fixture(scope="module")
def throttled(logs: Path, emulator: Emulator) -> Iterator[Subgraph]:
    """As `tracked`, with a short wait: batches that cannot be delivered answer fast."""
    yield from start_subgraph(logs, "subgraph-events-throttled", tracked_env(emulator, wait_ms=500))


def test_a_purchase_leaves_the_next_recommendations(
    tracked: Subgraph, fresh_emulator: Emulator
) -> None:
    recommendation_id, before = picks(tracked)
    bought = before[0]
    event = {
        "eventType": "Purchase",
        "itemId": bought,
        "recommendationId": recommendation_id,
        "impression": before,
        "properties": '{"channel": "web"}',
    }
    body = record(tracked, [event])
    assert body == {"data": {"recordEvents": {"accepted": 1, "delivered": True}}}
    _, after = picks(tracked)
    assert bought not in after
    # What reached Personalize carries the attribution.
    sent = put_events_bodies(fresh_emulator)
    assert len(sent) == 1
    assert sent[0]["userId"] == USER
    assert sent[0]["sessionId"] == "session-1"
    assert sent[0]["eventList"][0]["recommendationId"] == recommendation_id
    assert sent[0]["eventList"][0]["impression"] == before


def test_bad_events_are_refused_and_nothing_is_sent(
    tracked: Subgraph, fresh_emulator: Emulator
) -> None:
    view: dict[str, Any] = {"eventType": "View", "itemId": "item-0001"}
    cases: list[tuple[list[dict[str, Any]], str]] = [
        ([view] * 11, "events must hold 1..10"),
        ([{**view, "properties": "not json"}], "events[0].properties"),
        ([{**view, "properties": "{" + '"a":"' + "x" * 1100 + '"}'}], "events[0].properties"),
        ([{**view, "impression": [f"item-{i:04d}" for i in range(26)]}], "events[0].impression"),
        ([{**view, "recommendationId": "r" * 41}], "events[0].recommendationId"),
        ([{"eventType": "", "itemId": "item-0001"}], "events[0].eventType"),
        ([{**view, "properties": '{"userId": "x"}'}], "reserved key(s) userId"),
        ([{**view, "sentAt": "1969-07-20T20:17:00Z"}], "events[0].sentAt"),
    ]
    for events, problem in cases:
        body = record(tracked, events)
        assert codes(body) == ["BAD_USER_INPUT"], body
        assert problem in body["errors"][0]["message"]
    assert put_events_bodies(fresh_emulator, delivered_only=False) == []


def test_throttled_events_are_delivered_later_and_a_full_queue_refuses(
    throttled: Subgraph, fresh_emulator: Emulator
) -> None:
    fresh_emulator.faults(
        rules=[{"match": {"trackingId": DEMO_TRACKING_ID}, "error": "ThrottlingException"}]
    )
    views = [[{"eventType": "View", "itemId": f"item-{n:04d}"}] for n in range(1, 8)]
    outcomes = [record(throttled, events) for events in views]
    accepted = [o for o in outcomes if "errors" not in o]
    refused = [o for o in outcomes if "errors" in o]
    # One batch in delivery plus a queue of three; the rest are refused, with a code.
    assert [o["data"]["recordEvents"] for o in accepted] == [
        {"accepted": 1, "delivered": False}
    ] * 4
    assert {c for o in refused for c in codes(o)} == {"EVENTS_QUEUE_FULL"}
    assert len(refused) == 3
    # Throttled attempts kept coming; nothing was delivered yet.
    assert put_events_bodies(fresh_emulator) == []
    assert len(put_events_bodies(fresh_emulator, delivered_only=False)) >= 2
    fresh_emulator.faults()
    deadline = time.monotonic() + 10
    while len(put_events_bodies(fresh_emulator)) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    delivered = [b["eventList"][0]["itemId"] for b in put_events_bodies(fresh_emulator)]
    # Every accepted event arrived, once, in order.
    assert delivered == ["item-0001", "item-0002", "item-0003", "item-0004"]
    # And the operator saw it all.
    metrics = httpx.get(f"{throttled.url}/metrics").text
    assert 'personalize_subgraph_events_total{fate="refused"} 3.0' in metrics
    assert "personalize_subgraph_event_queue_depth 0.0" in metrics
    retries = [
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("personalize_subgraph_event_retries_total")
    ]
    assert retries
    assert retries[0] >= 2


def test_anonymous_sessions_are_accepted(tracked: Subgraph, fresh_emulator: Emulator) -> None:
    body = record(tracked, [{"eventType": "View", "itemId": "item-0009"}], user=None)
    assert body == {"data": {"recordEvents": {"accepted": 1, "delivered": True}}}
    assert "userId" not in put_events_bodies(fresh_emulator)[0]


@pytest.fixture(scope="module")
def local_tracked(logs: Path) -> Iterator[Subgraph]:
    """The embedded engine takes the events in-process."""
    yield from start_subgraph(
        logs,
        "subgraph-events-local",
        {
            "SUBGRAPH_BACKEND": "local",
            "SUBGRAPH_EVENTS__TRACKING_ID": DEMO_TRACKING_ID,
            "SUBGRAPH_EVENTS__WAIT_MS": "5000",
            "SUBGRAPH_CACHE__ENABLED": "false",
        },
    )


def test_the_embedded_engine_learns_from_events_too(local_tracked: Subgraph) -> None:
    recommendation_id, before = picks(local_tracked)
    bought: list[dict[str, Any]] = [
        {"eventType": "Purchase", "itemId": i, "recommendationId": recommendation_id}
        for i in before[:2]
    ]
    body = record(local_tracked, bought)
    assert body == {"data": {"recordEvents": {"accepted": 2, "delivered": True}}}
    _, after = picks(local_tracked)
    assert not set(before[:2]) & set(after)


def test_a_batch_refused_for_good_is_reported_to_the_client(
    tracked: Subgraph, fresh_emulator: Emulator
) -> None:
    fresh_emulator.faults(
        rules=[
            {
                "match": {"trackingId": DEMO_TRACKING_ID},
                "error": "AccessDeniedException",
                "status": 403,
            }
        ]
    )
    body = record(tracked, [{"eventType": "View", "itemId": "item-0005"}])
    assert codes(body) == ["UPSTREAM_UNAVAILABLE"]
    # One attempt: a refusal is not retried, and the sender goes on with the next batch.
    assert len(put_events_bodies(fresh_emulator, delivered_only=False)) == 1
    fresh_emulator.faults()
    again = record(tracked, [{"eventType": "View", "itemId": "item-0006"}])
    assert again == {"data": {"recordEvents": {"accepted": 1, "delivered": True}}}
    # Every event carries an id, so a retry after a lost answer is not counted twice.
    assert put_events_bodies(fresh_emulator)[-1]["eventList"][0]["eventId"]
