"""PutEvents closes the loop: the real aioboto3 personalize-events client against the
emulator, and the user's next recommendations from the runtime client.

The emulator serves the session's shared demo engine; every test starts and ends with
``POST /_emulator/reset``, which also forgets recorded events, so other modules see
the engine as it was built.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aioboto3
import httpx
import pytest
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError
from types_aiobotocore_personalize_runtime import PersonalizeRuntimeClient

from local_personalize import ARN_PREFIX, Engine
from local_personalize.resources import (
    DEMO_TRACKING_ID,
    Deployment,
    Recipe,
    Resources,
    ResourcesFileError,
    load_resources,
)

UP = f"{ARN_PREFIX}campaign/user-personalization"
RANK = f"{ARN_PREFIX}campaign/personalized-ranking"
EXCLUDE_PURCHASED = f"{ARN_PREFIX}filter/exclude-purchased"
PURCHASE = "Purchase"  # the demo's purchase event type, which exclude-purchased names
# After the demo data's newest event, so recorded events are the user's latest whatever
# this machine's clock says.
LATER = 1_790_000_000


pytestmark = pytest.mark.usefixtures("clean_emulator")


def _session(monkeypatch: pytest.MonkeyPatch) -> aioboto3.Session:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return aioboto3.Session(
        aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
    )


@pytest.fixture
async def events(base_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """The personalize-events client (Any: no type stubs for it are installed)."""
    config = AioConfig(retries={"total_max_attempts": 1, "mode": "standard"})
    async with _session(monkeypatch).client(
        "personalize-events", endpoint_url=base_url, config=config
    ) as c:
        yield c


@pytest.fixture
async def lax_events(base_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """The same client with botocore's own checks off, so bad requests reach the wire."""
    config = AioConfig(
        retries={"total_max_attempts": 1, "mode": "standard"}, parameter_validation=False
    )
    async with _session(monkeypatch).client(
        "personalize-events", endpoint_url=base_url, config=config
    ) as c:
        yield c


@pytest.fixture
async def runtime(
    base_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[PersonalizeRuntimeClient]:
    config = AioConfig(retries={"total_max_attempts": 1, "mode": "standard"})
    async with _session(monkeypatch).client(
        "personalize-runtime", endpoint_url=base_url, config=config
    ) as c:
        yield c


def _event(item_id: str, event_type: str = "View", at: int = LATER) -> dict[str, Any]:
    return {"eventType": event_type, "itemId": item_id, "sentAt": at}


async def _recommended(runtime: PersonalizeRuntimeClient, user_id: str, **extra: Any) -> list[str]:
    answer = await runtime.get_recommendations(
        campaignArn=UP, userId=user_id, numResults=25, **extra
    )
    return [e["itemId"] for e in answer["itemList"]]


def _top_of_category(engine: Engine, category: str, n: int) -> list[str]:
    """The category's n most interacted-with items, from the dataset itself."""
    counts: dict[int, int] = {}
    for i in engine.dataset.interactions.item.tolist():
        counts[i] = counts.get(i, 0) + 1
    column = engine.dataset.items.columns["CATEGORY"].strings
    ranked = sorted(
        (i for i in range(len(engine.dataset.items)) if column[i] == category),
        key=lambda i: (-counts.get(i, 0), i),
    )
    return [engine.dataset.items.ids[i] for i in ranked[:n]]


def _share(engine: Engine, item_ids: list[str], category: str) -> int:
    column = engine.dataset.items.columns["CATEGORY"].strings
    return sum(column[engine.dataset.items.index[i]] == category for i in item_ids)


async def test_a_purchase_disappears_from_the_next_filtered_answers(
    events: Any, runtime: PersonalizeRuntimeClient
) -> None:
    user = "user-0042"
    before = await _recommended(runtime, user, filterArn=EXCLUDE_PURCHASED)
    bought = before[0]
    answer = await events.put_events(
        trackingId=DEMO_TRACKING_ID,
        userId=user,
        sessionId="session-1",
        eventList=[_event(bought, PURCHASE)],
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200

    after = await _recommended(runtime, user, filterArn=EXCLUDE_PURCHASED)
    assert bought not in after
    assert len(after) == 25
    ranked = await runtime.get_personalized_ranking(
        campaignArn=RANK,
        userId=user,
        inputList=[bought, *before[1:4]],
        filterArn=EXCLUDE_PURCHASED,
    )
    assert bought not in [e["itemId"] for e in ranked["personalizedRanking"]]
    # Another user's answers do not move.
    other = await _recommended(runtime, "user-0043", filterArn=EXCLUDE_PURCHASED)
    assert other == await _recommended(runtime, "user-0043", filterArn=EXCLUDE_PURCHASED)


async def test_views_of_one_category_turn_the_next_recommendations_to_it(
    events: Any, runtime: PersonalizeRuntimeClient, engine: Engine
) -> None:
    user, category = "user-0100", "kitchen"
    before = await _recommended(runtime, user)
    assert _share(engine, before, category) <= 2  # not this user's taste yet
    viewed = _top_of_category(engine, category, 10)
    await events.put_events(
        trackingId=DEMO_TRACKING_ID,
        userId=user,
        sessionId="session-2",
        eventList=[_event(item, at=LATER + k) for k, item in enumerate(viewed)],
    )
    after = await _recommended(runtime, user)
    assert _share(engine, after, category) >= 15
    # Personalized ranking reads the same history: unseen kitchen items now lead.
    unseen = _top_of_category(engine, category, 15)[10:]
    ranked = await runtime.get_personalized_ranking(
        campaignArn=RANK, userId=user, inputList=[*before[:5], *unseen]
    )
    top = [e["itemId"] for e in ranked["personalizedRanking"][:5]]
    assert _share(engine, top, category) >= 4


async def test_a_new_user_is_personalized_from_their_first_events(
    events: Any, runtime: PersonalizeRuntimeClient, engine: Engine
) -> None:
    viewed = _top_of_category(engine, "toys", 5)
    cold = await _recommended(runtime, "brand-new-user")
    await events.put_events(
        trackingId=DEMO_TRACKING_ID,
        userId="brand-new-user",
        sessionId="s",
        eventList=[_event(i) for i in viewed],
    )
    warm = await _recommended(runtime, "brand-new-user")
    assert warm != cold
    assert _share(engine, warm, "toys") >= 15


def test_item_knn_scores_from_the_updated_history_too(engine: Engine) -> None:
    knn = Deployment(
        "knn",
        "campaign",
        Recipe.USER_PERSONALIZATION,
        requires_user=True,
        hyperparameters=(("ease_max_items", "100"),),
    )
    local = Engine(engine.dataset, Resources((knn,), ()))
    assert local.describe()["eventTrackers"][0]["trackingId"] == DEMO_TRACKING_ID
    request = {"campaignArn": knn.arn, "userId": "user-0100", "numResults": 25}
    before = [e["itemId"] for e in local.get_recommendations(request)["itemList"]]
    assert _share(engine, before, "kitchen") <= 2
    local.put_events(
        {
            "trackingId": DEMO_TRACKING_ID,
            "userId": "user-0100",
            "sessionId": "s",
            "eventList": [_event(i) for i in _top_of_category(engine, "kitchen", 10)],
        }
    )
    after = [e["itemId"] for e in local.get_recommendations(request)["itemList"]]
    assert _share(engine, after, "kitchen") >= 15


async def test_anonymous_events_join_the_user_who_logs_in_to_the_session(
    events: Any, runtime: PersonalizeRuntimeClient, engine: Engine
) -> None:
    user = "user-0042"
    bought = (await _recommended(runtime, user, filterArn=EXCLUDE_PURCHASED))[0]
    await events.put_events(
        trackingId=DEMO_TRACKING_ID, sessionId="anon", eventList=[_event(bought, PURCHASE)]
    )
    # Counted, but nobody's history changed yet.
    assert bought in await _recommended(runtime, user, filterArn=EXCLUDE_PURCHASED)
    assert engine.describe()["events"]["anonymous"] == 1
    await events.put_events(
        trackingId=DEMO_TRACKING_ID,
        userId=user,
        sessionId="anon",
        eventList=[{"eventType": "Login", "sentAt": LATER + 1}],
    )
    assert bought not in await _recommended(runtime, user, filterArn=EXCLUDE_PURCHASED)
    counts = engine.describe()["events"]
    assert counts["merged"] == 1
    assert counts["withoutItem"] == 1


async def test_items_unknown_to_the_model_are_kept_but_never_recommended(
    events: Any, runtime: PersonalizeRuntimeClient, engine: Engine
) -> None:
    await events.put_events(
        trackingId=DEMO_TRACKING_ID,
        userId="user-0042",
        sessionId="s",
        eventList=[_event("not-in-the-catalog", PURCHASE), _event("item-0001")],
    )
    assert "not-in-the-catalog" not in await _recommended(runtime, "user-0042")
    history = engine.events.history("user-0042")
    assert history is not None
    assert history.items[-2:].tolist() == [-1, 0]
    assert engine.describe()["events"]["unknownItems"] == 1


PROPERTIES_1025 = '{"k": "' + "x" * 1016 + '"}'  # 7 + 1016 + 2 characters


def _base_request() -> dict[str, Any]:
    return {
        "trackingId": DEMO_TRACKING_ID,
        "userId": "user-0042",
        "sessionId": "s",
        "eventList": [
            {
                "eventId": "e1",
                "eventType": "View",
                "eventValue": 1.5,
                "itemId": "item-0001",
                "properties": '{"numberOfRatings": "12"}',
                "sentAt": LATER,
                "recommendationId": "RID-1",
                "impression": ["item-0001", "item-0002"],
                "metricAttribution": {"eventAttributionSource": "SOURCE_NAME_A"},
            }
        ],
    }


def _first_event(**change: Any) -> dict[str, Any]:
    request = _base_request()
    request["eventList"][0].update(change)
    return request


def _without_sent_at() -> dict[str, Any]:
    request = _base_request()
    del request["eventList"][0]["sentAt"]
    return request


@pytest.mark.parametrize(
    ("request_body", "member"),
    [
        pytest.param(
            {**_base_request(), "eventList": _base_request()["eventList"] * 11},
            "'eventList'",
            id="11 events",
        ),
        pytest.param(
            _first_event(properties=PROPERTIES_1025),
            "eventList.1.member.properties",
            id="properties of 1025",
        ),
        pytest.param(_without_sent_at(), "eventList.1.member.sentAt", id="missing sentAt"),
        pytest.param(
            _first_event(impression=["item-0001"] * 26),
            "eventList.1.member.impression",
            id="impression of 26",
        ),
        pytest.param(
            _first_event(properties='{"userId": "u"}'),
            "eventList.1.member.properties",
            id="reserved property",
        ),
        pytest.param(
            _first_event(recommendationId="r" * 41),
            "eventList.1.member.recommendationId",
            id="recommendationId of 41",
        ),
        pytest.param({**_base_request(), "sessionId": "s" * 257}, "'sessionId'", id="sessionId"),
    ],
)
async def test_validation_errors_name_the_member(
    lax_events: Any, request_body: dict[str, Any], member: str
) -> None:
    await lax_events.put_events(**_base_request())  # the base request itself is valid
    with pytest.raises(ClientError) as info:
        await lax_events.put_events(**request_body)
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "InvalidInputException"
    assert member in error["Error"]["Message"]
    assert "user-0042" not in error["Error"]["Message"]  # sensitive values are not echoed


async def test_an_unknown_tracking_id_is_404(events: Any) -> None:
    with pytest.raises(ClientError) as info:
        await events.put_events(
            trackingId="no-such-tracker", sessionId="s", eventList=[_event("item-0001")]
        )
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


async def test_fault_rules_stats_and_the_empty_answer(events: Any, base_url: str) -> None:
    async with httpx.AsyncClient(base_url=f"{base_url}/_emulator") as control:
        rule = {"match": {"trackingId": DEMO_TRACKING_ID}, "error": "ThrottlingException"}
        (await control.post("/faults", json={"rules": [rule]})).raise_for_status()
        with pytest.raises(ClientError) as info:
            await events.put_events(
                trackingId=DEMO_TRACKING_ID, sessionId="s", eventList=[_event("item-0001")]
            )
        assert info.value.response["Error"]["Code"] == "ThrottlingException"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        (await control.post("/faults", json={})).raise_for_status()

        # The wire answer itself: PutEvents has no output shape, the service sends {}.
        raw = await control.post(
            f"{base_url}/events",
            json={"trackingId": DEMO_TRACKING_ID, "sessionId": "s", "eventList": [_event("x")]},
        )
        assert raw.status_code == 200
        assert raw.content == b"{}"

        stats = (await control.get("/stats")).json()
        assert stats["calls"]["PutEvents"] == 2
        assert stats["faults"]["rule"] == 1
        recent = (await control.get("/requests")).json()["requests"]
        assert [r["operation"] for r in recent] == ["PutEvents", "PutEvents"]
        assert recent[0]["body"]["trackingId"] == DEMO_TRACKING_ID


def test_a_resources_file_declares_its_trackers(tmp_path: Path) -> None:
    path = tmp_path / "resources.toml"
    base = '[[campaigns]]\nname = "p"\nrecipe = "aws-popularity-count"\n'
    path.write_text(base)
    assert load_resources(path).resources.event_trackers[0].tracking_id == DEMO_TRACKING_ID
    path.write_text(base + '[[event_trackers]]\ntracking_id = "mine"\n')
    trackers = load_resources(path).resources.event_trackers
    assert [t.tracking_id for t in trackers] == ["mine"]
    path.write_text(base + "[[event_trackers]]\nname = 'no id'\n")
    with pytest.raises(ResourcesFileError, match=r"\[\[event_trackers\]\] #1: needs a tracking_id"):
        load_resources(path)


async def test_attribution_sources_are_recorded_and_shown(
    events: Any, lax_events: Any, engine: Engine, base_url: str
) -> None:
    """metricAttribution.eventAttributionSource through the real personalize-events
    client: the engine counts it by source and type, /_emulator/events shows it, and
    a source outside the model's pattern is refused with nothing recorded."""
    attributed = {"metricAttribution": {"eventAttributionSource": "HOME_HERO:campaign"}}
    await events.put_events(
        trackingId=DEMO_TRACKING_ID,
        userId="user-0042",
        sessionId="session-9",
        eventList=[
            {**_event("item-0001", "click"), **attributed},
            {**_event("item-0002", "click"), **attributed},
            _event("item-0003", "click"),
        ],
    )
    assert engine.events.attributed == {"HOME_HERO:campaign": {"click": 2}}
    async with httpx.AsyncClient() as client:
        shown = (await client.get(f"{base_url}/_emulator/events")).json()
    assert [e["eventAttributionSource"] for e in shown["events"]] == [
        "HOME_HERO:campaign",
        "HOME_HERO:campaign",
        None,
    ]
    assert shown["attributed"] == {"HOME_HERO:campaign": {"click": 2}}
    for bad in ("   ", "caf\u00e9", "x" * 1025):
        with pytest.raises(ClientError) as raised:
            await lax_events.put_events(
                trackingId=DEMO_TRACKING_ID,
                sessionId="session-9",
                eventList=[
                    {**_event("item-0004"), "metricAttribution": {"eventAttributionSource": bad}}
                ],
            )
        assert raised.value.response["Error"]["Code"] == "InvalidInputException"
        assert "eventAttributionSource" in raised.value.response["Error"]["Message"]
    assert engine.events.attributed == {"HOME_HERO:campaign": {"click": 2}}
