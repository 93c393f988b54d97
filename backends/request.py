"""The frozen, hashable request a resolver builds and a backend sends, and what comes back.

A request is the loader's key: two fields asking the same thing in one operation build
equal requests and so cost one Personalize call. Both backends speak the Personalize
Runtime wire format (camelCase JSON), so the conversion lives here, once.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from math import isfinite
from typing import Any, NamedTuple


class Operation(StrEnum):
    """The Personalize Runtime operation a request calls."""

    GET_RECOMMENDATIONS = "GetRecommendations"
    GET_PERSONALIZED_RANKING = "GetPersonalizedRanking"


@dataclass(frozen=True, slots=True)
class Promotion:
    """A promotion: a share of the list drawn from another filter."""

    name: str
    percent_promoted_items: int
    filter_arn: str
    filter_values: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RecommendationRequest:
    """One call to Personalize; every collection is a sorted tuple so equal asks hash equal."""

    operation: Operation
    arn: str
    use_case: str
    user_id: str | None = None
    item_id: str | None = None
    num_results: int | None = None
    input_list: tuple[str, ...] = ()
    filter_arn: str | None = None
    filter_values: tuple[tuple[str, str], ...] = ()
    context: tuple[tuple[str, str], ...] = ()
    promotion: Promotion | None = None
    metadata_columns: tuple[str, ...] = ()

    def to_api_params(self) -> dict[str, Any]:
        """The operation's parameters as botocore (and the wire) name them."""
        params: dict[str, Any] = {}
        # Since the 2021-11-29 API change, domain recommenders go by recommenderArn.
        if ":recommender/" in self.arn:
            params["recommenderArn"] = self.arn
        else:
            params["campaignArn"] = self.arn
        if self.user_id is not None:
            params["userId"] = self.user_id
        if self.operation is Operation.GET_PERSONALIZED_RANKING:
            params["inputList"] = list(self.input_list)
        else:
            if self.item_id is not None:
                params["itemId"] = self.item_id
            if self.num_results is not None:
                params["numResults"] = self.num_results
            if self.promotion is not None:
                promotion: dict[str, Any] = {
                    "name": self.promotion.name,
                    "percentPromotedItems": self.promotion.percent_promoted_items,
                    "filterArn": self.promotion.filter_arn,
                }
                if self.promotion.filter_values:
                    promotion["filterValues"] = dict(self.promotion.filter_values)
                params["promotions"] = [promotion]
        if self.filter_arn is not None:
            params["filterArn"] = self.filter_arn
        if self.filter_values:
            params["filterValues"] = dict(self.filter_values)
        if self.context:
            params["context"] = dict(self.context)
        if self.metadata_columns:
            params["metadataColumns"] = {"ITEMS": list(self.metadata_columns)}
        return params


_new_tuple = tuple.__new__


class ResultItem(NamedTuple):
    """One recommended item as Personalize returns it.

    A NamedTuple rather than a frozen dataclass: as immutable (cached answers share their
    items), and built in a third of the time, which counts at 25 items per answer.
    """

    item_id: str
    score: float | None = None
    promotion_name: str | None = None
    reasons: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True, slots=True)
class RecommendationResult:
    """A whole answer: the items in order and the id used for attribution."""

    recommendation_id: str | None
    items: tuple[ResultItem, ...] = field(default_factory=tuple)

    @classmethod
    def from_api_response(
        cls, operation: Operation, body: dict[str, Any]
    ) -> "RecommendationResult":
        """Read a GetRecommendations or GetPersonalizedRanking response body.

        Raises MalformedAnswer when a value is not of the type the service model gives
        it: what comes from upstream is checked here, at the edge, so that every path
        above (graphql-core's, the compiled one, the cache) can trust its types.
        """
        key = (
            "personalizedRanking" if operation is Operation.GET_PERSONALIZED_RANKING else "itemList"
        )
        entries = body.get(key)
        if entries is None:
            entries = []
        recommendation_id = body.get("recommendationId")
        if not isinstance(entries, list) or not (
            recommendation_id is None or type(recommendation_id) is str
        ):
            raise MalformedAnswer(f"{key} or recommendationId is not of its type")
        items: list[ResultItem] = []
        for entry in entries:
            if type(entry) is not dict:
                raise MalformedAnswer(f"an entry of {key} is not an object")
            item_id = entry.get("itemId")
            if item_id is None:
                continue
            score = entry.get("score")
            if (
                len(entry) == 2
                and type(item_id) is str
                and type(score) is float
                and isfinite(score)
            ):
                # Personalize's usual entry, built without the NamedTuple's keyword layer.
                items.append(_new_tuple(ResultItem, (item_id, score, None, (), None)))
                continue
            items.append(_checked_item(entry, item_id))
        return cls(recommendation_id=recommendation_id, items=tuple(items))


class MalformedAnswer(ValueError):
    """An upstream answer with a value of the wrong type (a score that is not a number...)."""


def _is_number(value: Any) -> bool:
    # JSON has no NaN or infinity, but Python's json (botocore's) reads them.
    if type(value) is float:
        return isfinite(value)
    return type(value) is int


def _checked_item(entry: dict[str, Any], item_id: Any) -> ResultItem:
    score = entry.get("score")
    promotion = entry.get("promotionName")
    reasons = entry.get("reason") or ()
    metadata = entry.get("metadata")
    if (
        not (type(item_id) is str or _is_number(item_id))
        or not (score is None or _is_number(score))
        or not (promotion is None or type(promotion) is str)
        or not (isinstance(reasons, list | tuple) and all(type(r) is str for r in reasons))
        or not (
            metadata is None
            or (
                type(metadata) is dict
                and all(type(k) is str and type(v) is str for k, v in metadata.items())
            )
        )
    ):
        raise MalformedAnswer(f"an entry for item {item_id!r} has a value of the wrong type")
    return ResultItem(
        str(item_id),
        score,
        promotion,
        tuple(reasons),
        None if metadata is None else tuple(sorted(metadata.items())),
    )
