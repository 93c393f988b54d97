"""Argument checks against botocore's personalize-runtime model, and request building.

botocore checks only required/type/min locally; every other limit of the model is
checked here so that a bad argument costs no call and gets a BAD_USER_INPUT error
naming the argument.
"""

import math
import re
from collections.abc import Iterable
from typing import Any

import strawberry

from domain.errors import InvalidArgument
from domain.request import Promotion
from resolvers.naming import param_attr, param_field
from settings import ParamType, Settings

MAX_ID = 256  # UserID, ItemID
MAX_RESULTS = 500
MAX_RESULTS_WITH_METADATA = 50
MAX_CONTEXT = 150
MAX_CONTEXT_KEY = 150
MAX_CONTEXT_VALUE = 1000
MAX_FILTER_VALUE = 1000
MAX_INPUT_LIST = 500
_CONTEXT_KEY = re.compile(r"[A-Za-z\d_]+", re.ASCII)
_PROMOTION_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9\-_]*")


def given(value: Any) -> bool:
    """Whether an optional argument was passed with a value."""
    return value is not None and value is not strawberry.UNSET


def check_id(value: Any, argument: str) -> str:
    text = str(value)
    if not text:
        raise InvalidArgument(f"{argument} must not be empty")
    if len(text) > MAX_ID:
        raise InvalidArgument(f"{argument} must be at most {MAX_ID} characters")
    return text


def max_results(*, with_metadata: bool) -> int:
    """The most items one call may ask for: fewer when item metadata comes back."""
    return MAX_RESULTS_WITH_METADATA if with_metadata else MAX_RESULTS


def check_num_results(value: Any, *, with_metadata: bool) -> int | None:
    if not given(value):
        return None
    limit = max_results(with_metadata=with_metadata)
    if not 1 <= value <= limit:
        why = " when item metadata is returned" if with_metadata else ""
        raise InvalidArgument(f"numResults must be between 1 and {limit}{why}, got {value}")
    return int(value)


def check_context(
    entries: Any, from_graph: dict[str, str] | None = None
) -> tuple[tuple[str, str], ...]:
    """Sorted context pairs; `from_graph` (via @requires) fills keys the client left out."""
    if not given(entries):
        entries = []
    if len(entries) > MAX_CONTEXT:
        raise InvalidArgument(f"context takes at most {MAX_CONTEXT} entries, got {len(entries)}")
    seen: dict[str, str] = {}
    for entry in entries:
        key, value = entry.key, entry.value
        if not _CONTEXT_KEY.fullmatch(key) or len(key) > MAX_CONTEXT_KEY:
            raise InvalidArgument(
                f"context key {key[:40]!r} must be 1..{MAX_CONTEXT_KEY} of [A-Za-z0-9_]"
            )
        if len(value) > MAX_CONTEXT_VALUE:
            raise InvalidArgument(
                f"context value for {key!r} must be at most {MAX_CONTEXT_VALUE} characters"
            )
        if key in seen:
            raise InvalidArgument(f"context key {key!r} is given twice")
        seen[key] = value
    for key, value in (from_graph or {}).items():
        if key not in seen and len(value) <= MAX_CONTEXT_VALUE:
            seen[key] = value
    if len(seen) > MAX_CONTEXT:
        raise InvalidArgument(f"context takes at most {MAX_CONTEXT} entries, got {len(seen)}")
    # Sorted, so that the same context in another order is the same request.
    return tuple(sorted(seen.items()))


def _quote(value: str) -> str:
    # Personalize reads each value as a double-quoted string; escape what would end it.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise InvalidArgument("filter numbers must be finite")
    return repr(int(value)) if float(value).is_integer() else repr(value)


def encode_param(kind: ParamType, value: Any, argument: str) -> str:
    """One parameter's values in Personalize's `filterValues` format: `"a","b"`."""
    if kind is ParamType.STRINGS:
        values: Iterable[str] = value
        if not value:
            raise InvalidArgument(f"{argument} needs at least one value")
    elif kind is ParamType.NUMBER:
        values = [_number(value)]
    else:
        values = [value]
    encoded = ",".join(_quote(v) for v in values)
    if len(encoded) > MAX_FILTER_VALUE:
        raise InvalidArgument(
            f"{argument} is {len(encoded)} characters once quoted; "
            f"Personalize takes at most {MAX_FILTER_VALUE}"
        )
    return encoded


def resolve_filter(
    settings: Settings, value: Any, argument: str = "filter"
) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """(filter ARN, sorted filterValues) for a `RecommendationFilter` argument."""
    if not given(value):
        return None, ()
    for name, spec in settings.filters.items():
        chosen = getattr(value, name, None)
        if not given(chosen):
            continue
        if chosen is False:
            # `excludePurchased: false` asks for no filter.
            return None, ()
        values = tuple(
            sorted(
                (
                    param,
                    encode_param(
                        kind,
                        getattr(chosen, param_attr(param)),
                        f"{argument}.{name}.{param_field(param)}",
                    ),
                )
                for param, kind in spec.params.items()
            )
        )
        return spec.arn, values
    # @oneOf guarantees one field; reaching here means none was usable.
    raise InvalidArgument(f"{argument} must name exactly one filter")


def resolve_promotion(settings: Settings, value: Any) -> Promotion | None:
    if not given(value):
        return None
    name = value.name
    if not 1 <= len(name) <= 63 or not _PROMOTION_NAME.fullmatch(name):
        raise InvalidArgument(
            "promotion.name must be 1..63 characters of [a-zA-Z0-9_-], "
            "starting with a letter or digit"
        )
    if not 1 <= value.percent_promoted_items <= 100:
        raise InvalidArgument("promotion.percentPromotedItems must be between 1 and 100")
    filter_arn, filter_values = resolve_filter(settings, value.filter, "promotion.filter")
    if filter_arn is None:
        raise InvalidArgument("promotion.filter must name a filter")
    return Promotion(
        name=name,
        percent_promoted_items=value.percent_promoted_items,
        filter_arn=filter_arn,
        filter_values=filter_values,
    )


def check_input_list(item_ids: Any) -> tuple[str, ...]:
    if not item_ids:
        raise InvalidArgument("itemIds needs at least one id")
    if len(item_ids) > MAX_INPUT_LIST:
        raise InvalidArgument(f"itemIds takes at most {MAX_INPUT_LIST} ids, got {len(item_ids)}")
    return tuple(check_id(i, "itemIds[]") for i in item_ids)
