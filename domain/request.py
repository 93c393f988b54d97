"""The frozen, hashable request a resolver builds and a backend sends.

A request is the loader's key: two fields asking the same thing in one operation build
equal requests and so cost one Personalize call. Both backends speak the Personalize
Runtime wire format (camelCase JSON), so the conversion lives here, once.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


def is_recommender_arn(arn: str) -> bool:
    """Whether `arn` names a domain recommender rather than a campaign.

    Since the 2021-11-29 API change, recommenders are sent as `recommenderArn` and
    campaigns as `campaignArn`.
    """
    return ":recommender/" in arn


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


# Not slotted: the hash is kept in the instance's dict, outside the dataclass's fields
# (which are exactly the request's parameters).
@dataclass(frozen=True)
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

    def __post_init__(self) -> None:
        # Worked out once: a request is a dict key in the loader, the coalescer, the
        # cache and the compiled path, dozens of lookups per operation.
        # The instance's dict holds exactly the fields, in order, until the hash joins.
        object.__setattr__(self, "_hash", hash(tuple(self.__dict__.values())))

    def __hash__(self) -> int:
        found: int = self.__dict__["_hash"]
        return found

    def to_api_params(self) -> dict[str, Any]:
        """The operation's parameters as botocore (and the wire) name them."""
        params: dict[str, Any] = {}
        if is_recommender_arn(self.arn):
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
