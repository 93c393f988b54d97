"""The HTTP emulator on a real uvicorn server, called with the real aioboto3 client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aioboto3
import httpx
import pytest
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError
from types_aiobotocore_personalize_runtime import PersonalizeRuntimeClient as Client

from local_personalize import ARN_PREFIX, Engine

RFY = f"{ARN_PREFIX}recommender/recommended-for-you"
POP = f"{ARN_PREFIX}campaign/popularity"
RANK = f"{ARN_PREFIX}campaign/personalized-ranking"


pytestmark = pytest.mark.usefixtures("clean_emulator")


@pytest.fixture
async def client(base_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Client]:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    session = aioboto3.Session()
    config = AioConfig(retries={"total_max_attempts": 1, "mode": "standard"})
    async with session.client(
        "personalize-runtime",
        endpoint_url=base_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=config,
    ) as c:
        yield c


async def test_get_recommendations_with_recommender_arn(client: Client, engine: Engine) -> None:
    answer = await client.get_recommendations(
        recommenderArn=RFY,
        userId="user-0003",
        numResults=5,
        metadataColumns={"ITEMS": ["TITLE"]},
        context={"DEVICE": "mobile"},
    )
    expected = engine.get_recommendations({"recommenderArn": RFY, "userId": "user-0003"})
    assert [e["itemId"] for e in answer["itemList"]] == [
        e["itemId"] for e in expected["itemList"][:5]
    ]
    assert all(e["metadata"]["TITLE"] for e in answer["itemList"])
    assert answer["recommendationId"].startswith("RID-")


async def test_get_recommendations_with_campaign_arn_and_filter(client: Client) -> None:
    answer = await client.get_recommendations(
        campaignArn=POP,
        numResults=10,
        filterArn=f"{ARN_PREFIX}filter/by-category",
        filterValues={"CATEGORY": '"shoes"'},
        metadataColumns={"ITEMS": ["CATEGORY"]},
    )
    assert len(answer["itemList"]) == 10
    assert {e["metadata"]["CATEGORY"] for e in answer["itemList"]} == {"shoes"}


async def test_get_personalized_ranking(client: Client) -> None:
    answer = await client.get_personalized_ranking(
        campaignArn=RANK, userId="user-0003", inputList=["nope", "item-0002", "item-0001"]
    )
    ranked = [e["itemId"] for e in answer["personalizedRanking"]]
    assert sorted(ranked[:2]) == ["item-0001", "item-0002"]
    assert ranked[2] == "nope"


async def test_invalid_input_is_a_400_client_error(client: Client) -> None:
    with pytest.raises(ClientError) as info:
        await client.get_recommendations(campaignArn=POP, numResults=501)
    err = info.value.response
    assert err["Error"]["Code"] == "InvalidInputException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "numResults" in err["Error"]["Message"]


async def test_unknown_arn_is_a_404_client_error(client: Client) -> None:
    with pytest.raises(ClientError) as info:
        await client.get_recommendations(recommenderArn=f"{ARN_PREFIX}recommender/nope")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


async def test_fault_rules_and_stats(client: Client, control: httpx.AsyncClient) -> None:
    (
        await control.post(
            "/faults",
            json={
                "rules": [
                    {"match": {"userId": "user-0003"}, "error": "ThrottlingException"},
                    {
                        "match": {"recommenderArn": RFY, "userId": "user-0004"},
                        "error": "InternalFailure",
                    },
                ]
            },
        )
    ).raise_for_status()
    with pytest.raises(ClientError) as info:
        await client.get_recommendations(recommenderArn=RFY, userId="user-0003")
    assert info.value.response["Error"]["Code"] == "ThrottlingException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    with pytest.raises(ClientError) as info:
        await client.get_recommendations(recommenderArn=RFY, userId="user-0004")
    assert info.value.response["Error"]["Code"] == "InternalFailure"
    await client.get_recommendations(recommenderArn=RFY, userId="user-0005")
    await client.get_personalized_ranking(campaignArn=RANK, userId="u", inputList=["item-0001"])

    stats = (await control.get("/stats")).json()
    assert stats["calls"] == {"GetRecommendations": 3, "GetPersonalizedRanking": 1}
    assert stats["total"] == 4
    assert stats["faults"]["rule"] == 2
    (await control.post("/reset")).raise_for_status()
    assert (await control.get("/stats")).json()["total"] == 0
    await client.get_recommendations(recommenderArn=RFY, userId="user-0003")  # fault cleared


async def test_delay_applies_to_every_call_and_calls_overlap(
    client: Client, control: httpx.AsyncClient
) -> None:
    (await control.post("/faults", json={"delay_ms": 200})).raise_for_status()
    started = time.perf_counter()
    await client.get_recommendations(campaignArn=POP)
    assert time.perf_counter() - started >= 0.2
    started = time.perf_counter()
    await asyncio.gather(*(client.get_recommendations(campaignArn=POP) for _ in range(10)))
    elapsed = time.perf_counter() - started
    # Ten delayed calls one after another would take 2 s; side by side about 0.2 s.
    assert 0.2 <= elapsed < 1.5


def test_wire_errors_without_an_sdk(base_url: str) -> None:
    bad_json = httpx.post(f"{base_url}/recommendations", content=b"{not json")
    assert bad_json.status_code == 400
    assert bad_json.headers["x-amzn-ErrorType"] == "SerializationException"
    assert bad_json.headers["content-type"] == "application/json"
    assert "message" in bad_json.json()
    invalid = httpx.post(f"{base_url}/recommendations", json={"campaignArn": "x"})
    assert invalid.status_code == 400
    assert invalid.headers["x-amzn-ErrorType"] == "InvalidInputException"
    assert invalid.json()["message"].startswith("1 validation error detected")
    assert httpx.get(f"{base_url}/_emulator/health").status_code == 200
    unknown = httpx.post(f"{base_url}/no-such-operation", json={})
    assert unknown.status_code == 404
    assert unknown.headers["x-amzn-ErrorType"] == "UnknownOperationException"
    rejected = httpx.post(f"{base_url}/_emulator/faults", json={"rules": [{"match": {}}]})
    assert rejected.status_code == 400
