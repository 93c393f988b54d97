"""What a Personalize call answers: the items in order, their id for attribution, and
where the answer came from.

Upstream answers are read and type-checked here, at the edge, so that every path above
(graphql-core's, the compiled one, the cache) can trust their types.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from math import isfinite
from typing import Any, NamedTuple

from domain.request import Operation


class Source(StrEnum):
    """Who answered a request; `Recommendations.source` shows the name."""

    PERSONALIZE = "PERSONALIZE"
    LOCAL = "LOCAL"
    FALLBACK = "FALLBACK"


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
        usual = _usual_items(entries)
        if usual is not None:
            return cls(recommendation_id=recommendation_id, items=usual)
        items: list[ResultItem] = []
        for entry in entries:
            if type(entry) is not dict:
                raise MalformedAnswer(f"an entry of {key} is not an object")
            item_id = entry.get("itemId")
            if item_id is None:
                continue
            items.append(_checked_item(entry, item_id))
        return cls(recommendation_id=recommendation_id, items=tuple(items))


def _usual_items(entries: list[Any]) -> tuple[ResultItem, ...] | None:
    """Personalize's usual answer, every entry exactly {itemId: str, score: finite float},
    built in one pass without the NamedTuple's keyword layer; None for anything else."""
    try:
        items = [
            _new_tuple(ResultItem, (entry["itemId"], entry["score"], None, (), None))
            for entry in entries
            if type(entry) is dict and len(entry) == 2
        ]
    except KeyError:
        return None
    if len(items) != len(entries):
        return None
    for item in items:
        score = item[1]
        if type(item[0]) is not str or type(score) is not float or not isfinite(score):
            return None
    return tuple(items)


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
