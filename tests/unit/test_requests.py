"""Request building: ARN kinds, the wire parameters, and filter value encoding."""

from types import SimpleNamespace
from typing import Any

import pytest

from backends.upstream import read_answer
from domain.errors import InvalidArgument, UpstreamUnavailable
from domain.request import Operation, Promotion, RecommendationRequest
from domain.result import MalformedAnswer, RecommendationResult, ResultItem
from resolvers.arguments import (
    check_context,
    check_id,
    check_input_list,
    check_num_results,
    encode_param,
    resolve_filter,
    resolve_promotion,
)
from settings import ParamType, load_settings

PREFIX = "arn:aws:personalize:us-east-1:000000000000:"


def test_recommender_arns_go_as_recommender_arn_and_campaigns_as_campaign_arn() -> None:
    rec = RecommendationRequest(
        Operation.GET_RECOMMENDATIONS, PREFIX + "recommender/recommended-for-you", "r", user_id="u"
    )
    camp = RecommendationRequest(
        Operation.GET_RECOMMENDATIONS, PREFIX + "campaign/sims", "s", item_id="i", num_results=5
    )
    assert rec.to_api_params() == {
        "recommenderArn": PREFIX + "recommender/recommended-for-you",
        "userId": "u",
    }
    assert camp.to_api_params() == {
        "campaignArn": PREFIX + "campaign/sims",
        "itemId": "i",
        "numResults": 5,
    }


def test_every_optional_part_reaches_the_wire() -> None:
    request = RecommendationRequest(
        Operation.GET_RECOMMENDATIONS,
        PREFIX + "campaign/user-personalization",
        "up",
        user_id="u",
        num_results=10,
        filter_arn=PREFIX + "filter/by-category",
        filter_values=(("CATEGORY", '"shoes"'),),
        context=(("DEVICE", "mobile"),),
        promotion=Promotion("sale", 20, PREFIX + "filter/max-price", (("MAX_PRICE", '"20"'),)),
        metadata_columns=("TITLE",),
    )
    assert request.to_api_params() == {
        "campaignArn": PREFIX + "campaign/user-personalization",
        "userId": "u",
        "numResults": 10,
        "filterArn": PREFIX + "filter/by-category",
        "filterValues": {"CATEGORY": '"shoes"'},
        "context": {"DEVICE": "mobile"},
        "promotions": [
            {
                "name": "sale",
                "percentPromotedItems": 20,
                "filterArn": PREFIX + "filter/max-price",
                "filterValues": {"MAX_PRICE": '"20"'},
            }
        ],
        "metadataColumns": {"ITEMS": ["TITLE"]},
    }


def test_ranking_sends_input_list_and_no_num_results() -> None:
    request = RecommendationRequest(
        Operation.GET_PERSONALIZED_RANKING,
        PREFIX + "campaign/personalized-ranking",
        "rank",
        user_id="u",
        num_results=5,
        input_list=("a", "b"),
    )
    assert request.to_api_params() == {
        "campaignArn": PREFIX + "campaign/personalized-ranking",
        "userId": "u",
        "inputList": ["a", "b"],
    }


def test_equal_asks_are_equal_keys() -> None:
    a = RecommendationRequest(Operation.GET_RECOMMENDATIONS, PREFIX + "campaign/sims", "s", "u")
    b = RecommendationRequest(Operation.GET_RECOMMENDATIONS, PREFIX + "campaign/sims", "s", "u")
    assert a == b
    assert len({a, b}) == 1


def test_responses_are_parsed_for_both_operations() -> None:
    body = {
        "itemList": [
            {"itemId": "a", "score": 0.5, "reason": ["x"], "metadata": {"B": "2", "A": "1"}},
            {"itemId": "b", "promotionName": "sale"},
        ],
        "recommendationId": "RID-1",
    }
    result = RecommendationResult.from_api_response(Operation.GET_RECOMMENDATIONS, body)
    assert result.recommendation_id == "RID-1"
    assert [i.item_id for i in result.items] == ["a", "b"]
    assert result.items[0].metadata == (("A", "1"), ("B", "2"))
    assert result.items[0].reasons == ("x",)
    assert result.items[1].promotion_name == "sale"
    assert result.items[1].score is None
    ranked = RecommendationResult.from_api_response(
        Operation.GET_PERSONALIZED_RANKING, {"personalizedRanking": [{"itemId": "z"}]}
    )
    assert [i.item_id for i in ranked.items] == ["z"]
    # Nothing to recommend, said either way.
    empties: list[dict[str, Any]] = [{"itemList": []}, {}, {"itemList": None}]
    for empty in empties:
        nothing = RecommendationResult.from_api_response(Operation.GET_RECOMMENDATIONS, empty)
        assert nothing.items == ()


def test_plain_entries_read_like_any_other() -> None:
    # The usual {itemId, score} entry takes a shorter path; the result must not differ.
    body = {"itemList": [{"itemId": "a", "score": 0.5}, {"itemId": 7, "score": 1}, {"score": 2}]}
    items = RecommendationResult.from_api_response(Operation.GET_RECOMMENDATIONS, body).items
    assert items == (ResultItem("a", 0.5), ResultItem("7", 1))
    assert all(type(i) is ResultItem for i in items)
    assert (items[0].promotion_name, items[0].reasons, items[0].metadata) == (None, (), None)


@pytest.mark.parametrize(
    "body",
    [
        {"itemList": [{"itemId": "a", "score": "high"}]},
        {"itemList": [{"itemId": "a", "score": True}]},
        {"itemList": [{"itemId": "a", "score": float("nan")}]},
        {"itemList": [{"itemId": "a", "score": float("inf"), "reason": ["x"]}]},
        {"itemList": [{"itemId": "a", "score": 0.5, "reason": "x"}]},
        {"itemList": [{"itemId": "a", "metadata": {"PRICE": 3}}]},
        {"itemList": [{"itemId": ["a"]}]},
        {"itemList": ["a"]},
        {"itemList": {"itemId": "a"}},
        {"itemList": [], "recommendationId": 123},
    ],
)
def test_answers_with_values_of_the_wrong_type_are_the_upstreams_failure(
    body: dict[str, object],
) -> None:
    request = RecommendationRequest(
        operation=Operation.GET_RECOMMENDATIONS, arn=PREFIX + "campaign/c", use_case="uc"
    )
    with pytest.raises(MalformedAnswer):
        RecommendationResult.from_api_response(Operation.GET_RECOMMENDATIONS, body)
    # What the backends raise: a degradable failure, so the use case's fallback answers.
    with pytest.raises(UpstreamUnavailable, match="something unreadable") as raised:
        read_answer(request, body)
    assert raised.value.degradable


def test_filter_values_are_quoted_and_escaped() -> None:
    assert encode_param(ParamType.STRINGS, ["Comedy", "Drama"], "f") == '"Comedy","Drama"'
    assert encode_param(ParamType.STRINGS, ['say "hi"'], "f") == '"say \\"hi\\""'
    assert encode_param(ParamType.STRING, "a\\b", "f") == '"a\\\\b"'
    assert encode_param(ParamType.NUMBER, 20.0, "f") == '"20"'
    assert encode_param(ParamType.NUMBER, 19.5, "f") == '"19.5"'


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        (ParamType.STRINGS, [], "at least one value"),
        (ParamType.STRINGS, ["x" * 999], "at most 1000"),
        (ParamType.NUMBER, float("inf"), "finite"),
    ],
)
def test_bad_filter_values_are_rejected(kind: ParamType, value: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        encode_param(kind, value, "filter.x.y")


def test_filters_resolve_to_their_arn_and_values() -> None:
    settings = load_settings()
    by_category = SimpleNamespace(
        excludePurchased=None, byCategory=SimpleNamespace(category=["b", "a"]), maxPrice=None
    )
    assert resolve_filter(settings, by_category) == (
        PREFIX + "filter/by-category",
        (("CATEGORY", '"b","a"'),),
    )
    exclude = SimpleNamespace(excludePurchased=True, byCategory=None, maxPrice=None)
    assert resolve_filter(settings, exclude) == (PREFIX + "filter/exclude-purchased", ())
    off = SimpleNamespace(excludePurchased=False, byCategory=None, maxPrice=None)
    assert resolve_filter(settings, off) == (None, ())
    assert resolve_filter(settings, None) == (None, ())


def test_promotions_are_checked() -> None:
    settings = load_settings()
    price = SimpleNamespace(
        excludePurchased=None, byCategory=None, maxPrice=SimpleNamespace(max_price=25.0)
    )
    promotion = resolve_promotion(
        settings, SimpleNamespace(name="cheap", percent_promoted_items=30, filter=price)
    )
    assert promotion == Promotion(
        "cheap", 30, PREFIX + "filter/max-price", (("MAX_PRICE", '"25"'),)
    )
    for name, percent in [("", 10), ("-x", 10), ("x" * 64, 10), ("ok", 0), ("ok", 101)]:
        with pytest.raises(InvalidArgument, match="promotion"):
            resolve_promotion(
                settings, SimpleNamespace(name=name, percent_promoted_items=percent, filter=price)
            )


def test_model_limits_on_ids_results_context_and_input_lists() -> None:
    assert check_id("u" * 256, "userId") == "u" * 256
    with pytest.raises(InvalidArgument, match="at most 256"):
        check_id("u" * 257, "userId")
    with pytest.raises(InvalidArgument, match="empty"):
        check_id("", "userId")
    assert check_num_results(500, with_metadata=False) == 500
    assert check_num_results(None, with_metadata=False) is None
    for bad in (0, 501, -1):
        with pytest.raises(InvalidArgument, match="numResults"):
            check_num_results(bad, with_metadata=False)
    with pytest.raises(InvalidArgument, match="metadata"):
        check_num_results(51, with_metadata=True)

    def entry(key: str, value: str) -> SimpleNamespace:
        return SimpleNamespace(key=key, value=value)

    assert check_context([entry("B", "2"), entry("A", "1")]) == (("A", "1"), ("B", "2"))
    for entries in (
        [entry("bad-key", "x")],
        [entry("k" * 151, "x")],
        [entry("K", "v" * 1001)],
        [entry("K", "1"), entry("K", "2")],
        [entry(f"K{i}", "v") for i in range(151)],
    ):
        with pytest.raises(InvalidArgument, match="context"):
            check_context(entries)
    assert check_input_list(["a", "b"]) == ("a", "b")
    for bad_list in ([], ["x"] * 501, ["x" * 257]):
        with pytest.raises(InvalidArgument, match="itemIds"):
            check_input_list(bad_list)
