"""Server-side validation of wire-format requests against the Personalize service models.

botocore checks only required members, types and minimums; the service enforces the
rest (lengths, patterns, counts) and answers InvalidInputException. This module checks
every constraint of ``personalize-runtime`` 2018-05-22 plus the documented service
limits (numResults <= 500, <= 50 with metadataColumns; inputList likewise; at most 10
metadata columns), and of ``personalize-events`` 2018-03-22's PutEvents plus what its
documentation adds (``properties`` is a JSON object without reserved keys), and turns
the JSON body into typed request objects.

Messages follow AWS's "N validation errors detected: Value 'x' at 'path' failed to
satisfy constraint: ..." style; values of members the model marks sensitive are not
echoed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import InvalidInputException

DEFAULT_NUM_RESULTS = 25
MAX_NUM_RESULTS = 500
MAX_NUM_RESULTS_WITH_METADATA = 50
# The ColumnNamesList shape allows 99, but the metadataColumns member documentation in
# the same model says "The maximum number of columns you can provide is 10".
MAX_METADATA_COLUMNS = 10

_ARN = re.compile(r"arn:([a-z\d-]+):personalize:.*:.*:.+", re.ASCII)
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z\d_]+", re.ASCII)
_FILTER_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_]+")
_PROMOTION_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*")


@dataclass(frozen=True)
class Promotion:
    """One entry of ``promotions``."""

    name: str
    percent: int
    filter_arn: str
    filter_values: Mapping[str, str]


@dataclass(frozen=True)
class RecommendationsRequest:
    """A validated GetRecommendations request; ``arn_member`` names which ARN was sent."""

    arn: str
    arn_member: str
    user_id: str | None
    item_id: str | None
    num_results: int
    filter_arn: str | None
    filter_values: Mapping[str, str]
    context: Mapping[str, str]
    promotion: Promotion | None
    metadata_columns: tuple[str, ...] | None


@dataclass(frozen=True)
class RankingRequest:
    """A validated GetPersonalizedRanking request."""

    campaign_arn: str
    user_id: str
    input_list: tuple[str, ...]
    filter_arn: str | None
    filter_values: Mapping[str, str]
    context: Mapping[str, str]
    metadata_columns: tuple[str, ...] | None


class _Checker:
    """Collects every constraint violation so one error reports them all, as AWS does."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, path: str, constraint: str, value: object = None, *, show: bool = True) -> None:
        if show and value is not None:
            text = str(value)
            if len(text) > 100:
                text = text[:100] + "..."
            self.errors.append(
                f"Value '{text}' at '{path}' failed to satisfy constraint: {constraint}"
            )
        else:
            self.errors.append(f"Value at '{path}' failed to satisfy constraint: {constraint}")

    def raise_if_any(self) -> None:
        if self.errors:
            n = len(self.errors)
            noun = "error" if n == 1 else "errors"
            raise InvalidInputException(
                f"{n} validation {noun} detected: " + "; ".join(self.errors)
            )

    def string(
        self,
        value: Any,
        path: str,
        *,
        max_len: int,
        min_len: int = 0,
        pattern: re.Pattern[str] | None = None,
        required: bool = False,
        sensitive: bool = False,
    ) -> str | None:
        if value is None:
            if required:
                self.fail(path, "Member must not be null")
            return None
        if not isinstance(value, str):
            self.fail(path, "Member must be a string", value, show=not sensitive)
            return None
        ok = True
        if len(value) > max_len:
            self.fail(
                path,
                f"Member must have length less than or equal to {max_len}",
                value,
                show=not sensitive,
            )
            ok = False
        if len(value) < min_len:
            self.fail(
                path,
                f"Member must have length greater than or equal to {min_len}",
                value,
                show=not sensitive,
            )
            ok = False
        if pattern is not None and pattern.fullmatch(value) is None:
            self.fail(
                path,
                f"Member must satisfy regular expression pattern: {pattern.pattern}",
                value,
                show=not sensitive,
            )
            ok = False
        return value if ok else None

    def integer(
        self, value: Any, path: str, *, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        if value is None:
            return None
        # bool is an int subclass in Python but not a JSON integer.
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(path, "Member must be an integer", value)
            return None
        if minimum is not None and value < minimum:
            self.fail(path, f"Member must have value greater than or equal to {minimum}", value)
            return None
        if maximum is not None and value > maximum:
            self.fail(path, f"Member must have value less than or equal to {maximum}", value)
            return None
        return value

    def string_map(
        self,
        value: Any,
        path: str,
        *,
        max_entries: int,
        key_max: int,
        key_pattern: re.Pattern[str] | None,
        value_max: int,
        sensitive_values: bool,
    ) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, "Member must be a map", value)
            return {}
        if len(value) > max_entries:
            self.fail(path, f"Member must have length less than or equal to {max_entries}")
        out: dict[str, str] = {}
        for key, item in value.items():
            k = self.string(key, f"{path}.key", max_len=key_max, pattern=key_pattern)
            v = self.string(
                item, f"{path}.value", max_len=value_max, required=True, sensitive=sensitive_values
            )
            if k is not None and v is not None:
                out[k] = v
        return out

    def string_list(
        self,
        value: Any,
        path: str,
        *,
        max_items: int | None,
        item_max: int,
        required: bool,
        min_items: int = 0,
        item_min: int = 0,
        sensitive: bool = False,
    ) -> list[str] | None:
        if value is None:
            if required:
                self.fail(path, "Member must not be null")
            return None
        if not isinstance(value, list):
            self.fail(path, "Member must be a list", value, show=not sensitive)
            return None
        if max_items is not None and len(value) > max_items:
            self.fail(path, f"Member must have length less than or equal to {max_items}")
        if len(value) < min_items:
            self.fail(path, f"Member must have length greater than or equal to {min_items}")
        out: list[str] = []
        for i, item in enumerate(value, start=1):
            s = self.string(
                item,
                f"{path}.{i}.member",
                max_len=item_max,
                min_len=item_min,
                required=True,
                sensitive=sensitive,
            )
            if s is not None:
                out.append(s)
        return out

    def metadata_columns(self, value: Any) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail("metadataColumns", "Member must be a map", value)
            return None
        if len(value) > 1:
            self.fail("metadataColumns", "Member must have length less than or equal to 1")
            return None
        columns: list[str] = []
        for key, cols in value.items():
            dataset = self.string(key, "metadataColumns.key", max_len=256)
            names = self.string_list(
                cols, "metadataColumns.value", max_items=99, item_max=150, required=True
            )
            if dataset is None or names is None:
                return None
            if dataset != "ITEMS":
                self.fail(
                    "metadataColumns.key",
                    "Member must be ITEMS (the only dataset with metadata)",
                    dataset,
                )
                return None
            columns.extend(names)
        return tuple(columns)


def _require_object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidInputException("The request body must be a JSON object")
    return body


def _common(
    check: _Checker, body: Mapping[str, Any]
) -> tuple[str | None, dict[str, str], dict[str, str], tuple[str, ...] | None]:
    filter_arn = check.string(body.get("filterArn"), "filterArn", max_len=256, pattern=_ARN)
    filter_values = check.string_map(
        body.get("filterValues"),
        "filterValues",
        max_entries=25,
        key_max=50,
        key_pattern=_FILTER_ATTRIBUTE_NAME,
        value_max=1000,
        sensitive_values=True,
    )
    context = check.string_map(
        body.get("context"),
        "context",
        max_entries=150,
        key_max=150,
        key_pattern=_ATTRIBUTE_NAME,
        value_max=1000,
        sensitive_values=True,
    )
    columns = check.metadata_columns(body.get("metadataColumns"))
    return filter_arn, filter_values, context, columns


def _service_limits(columns: tuple[str, ...] | None, count: int, member: str) -> None:
    if columns is not None and len(columns) > MAX_METADATA_COLUMNS:
        raise InvalidInputException(
            f"metadataColumns can name at most {MAX_METADATA_COLUMNS} columns"
        )
    limit = MAX_NUM_RESULTS if columns is None else MAX_NUM_RESULTS_WITH_METADATA
    if count > limit:
        extra = " when metadataColumns are requested" if columns is not None else ""
        raise InvalidInputException(f"{member} must be at most {limit}{extra}; got {count}")


def parse_recommendations_request(body: Any) -> RecommendationsRequest:
    """Validate a GetRecommendations body; raises InvalidInputException."""
    body = _require_object(body)
    check = _Checker()
    campaign = check.string(body.get("campaignArn"), "campaignArn", max_len=256, pattern=_ARN)
    recommender = check.string(
        body.get("recommenderArn"), "recommenderArn", max_len=256, pattern=_ARN
    )
    user_id = check.string(body.get("userId"), "userId", max_len=256)
    item_id = check.string(body.get("itemId"), "itemId", max_len=256)
    num_results = check.integer(body.get("numResults"), "numResults", minimum=0)
    filter_arn, filter_values, context, columns = _common(check, body)
    promotion = _promotion(check, body.get("promotions"))
    check.raise_if_any()

    if (body.get("campaignArn") is None) == (body.get("recommenderArn") is None):
        raise InvalidInputException("Provide exactly one of campaignArn or recommenderArn")
    n = DEFAULT_NUM_RESULTS if num_results is None else num_results
    _service_limits(columns, n, "numResults")
    if filter_values and filter_arn is None:
        raise InvalidInputException("filterValues were given without a filterArn")
    arn, member = (
        (campaign, "campaignArn") if campaign is not None else (recommender, "recommenderArn")
    )
    assert arn is not None
    return RecommendationsRequest(
        arn, member, user_id, item_id, n, filter_arn, filter_values, context, promotion, columns
    )


def _promotion(check: _Checker, value: Any) -> Promotion | None:
    if value is None:
        return None
    if not isinstance(value, list):
        check.fail("promotions", "Member must be a list", value)
        return None
    if len(value) > 1:
        check.fail("promotions", "Member must have length less than or equal to 1")
        return None
    if not value:
        return None
    raw = value[0]
    path = "promotions.1.member"
    if not isinstance(raw, dict):
        check.fail(path, "Member must be a structure", raw)
        return None
    name = check.string(
        raw.get("name"),
        f"{path}.name",
        max_len=63,
        min_len=1,
        pattern=_PROMOTION_NAME,
        required=True,
    )
    percent = check.integer(
        raw.get("percentPromotedItems"), f"{path}.percentPromotedItems", minimum=1, maximum=100
    )
    if raw.get("percentPromotedItems") is None:
        check.fail(f"{path}.percentPromotedItems", "Member must not be null")
    filter_arn = check.string(
        raw.get("filterArn"), f"{path}.filterArn", max_len=256, pattern=_ARN, required=True
    )
    filter_values = check.string_map(
        raw.get("filterValues"),
        f"{path}.filterValues",
        max_entries=25,
        key_max=50,
        key_pattern=_FILTER_ATTRIBUTE_NAME,
        value_max=1000,
        sensitive_values=True,
    )
    if name is None or percent is None or filter_arn is None:
        return None
    return Promotion(name, percent, filter_arn, filter_values)


def parse_ranking_request(body: Any) -> RankingRequest:
    """Validate a GetPersonalizedRanking body; raises InvalidInputException."""
    body = _require_object(body)
    check = _Checker()
    campaign = check.string(
        body.get("campaignArn"), "campaignArn", max_len=256, pattern=_ARN, required=True
    )
    user_id = check.string(body.get("userId"), "userId", max_len=256, required=True)
    input_list = check.string_list(
        body.get("inputList"), "inputList", max_items=None, item_max=256, required=True
    )
    filter_arn, filter_values, context, columns = _common(check, body)
    check.raise_if_any()
    if campaign is None or user_id is None or input_list is None:  # pragma: no cover
        raise InvalidInputException("campaignArn, userId and inputList are required")
    _service_limits(columns, len(input_list), "inputList length")
    if filter_values and filter_arn is None:
        raise InvalidInputException("filterValues were given without a filterArn")
    return RankingRequest(
        campaign, user_id, tuple(input_list), filter_arn, filter_values, context, columns
    )


# --- PutEvents (personalize-events 2018-03-22) ------------------------------------------

MAX_EVENTS = 10
MAX_IMPRESSION = 25
MAX_PROPERTIES = 1024
# The Event member documentation: these cannot be keys of ``properties`` (any case).
RESERVED_PROPERTIES = frozenset(
    {"userid", "sessionid", "eventtype", "timestamp", "recommendationid", "impression"}
)
_ATTRIBUTION_SOURCE = re.compile(r"^[\x20-\x7E]*[\x21-\x7E]+[\x20-\x7E]*$")


@dataclass(frozen=True)
class Event:
    """One validated entry of ``eventList``; ``sent_at`` is epoch seconds."""

    event_type: str
    sent_at: float
    item_id: str | None = None
    event_value: float | None = None
    event_id: str | None = None
    properties: Mapping[str, Any] | None = None
    recommendation_id: str | None = None
    impression: tuple[str, ...] | None = None
    attribution_source: str | None = None


@dataclass(frozen=True)
class PutEventsRequest:
    """A validated PutEvents request."""

    tracking_id: str
    user_id: str | None
    session_id: str
    events: tuple[Event, ...]


def parse_put_events_request(body: Any) -> PutEventsRequest:
    """Validate a PutEvents body; raises InvalidInputException naming every bad member.

    The model marks ``Event`` (and ``userId``) sensitive, so their values are never
    echoed. ``sentAt`` is a number (rest-json sends timestamps as epoch seconds); an
    in-process caller may also pass a ``datetime``.
    """
    body = _require_object(body)
    check = _Checker()
    tracking_id = check.string(
        body.get("trackingId"), "trackingId", max_len=256, min_len=1, required=True
    )
    user_id = check.string(body.get("userId"), "userId", max_len=256, min_len=1, sensitive=True)
    session_id = check.string(
        body.get("sessionId"), "sessionId", max_len=256, min_len=1, required=True
    )
    raw_events = body.get("eventList")
    events: list[Event] = []
    if raw_events is None:
        check.fail("eventList", "Member must not be null")
    elif not isinstance(raw_events, list):
        check.fail("eventList", "Member must be a list", show=False)
    else:
        if len(raw_events) > MAX_EVENTS:
            check.fail("eventList", f"Member must have length less than or equal to {MAX_EVENTS}")
        if not raw_events:
            check.fail("eventList", "Member must have length greater than or equal to 1")
        for i, raw in enumerate(raw_events, start=1):
            event = _event(check, raw, f"eventList.{i}.member")
            if event is not None:
                events.append(event)
    check.raise_if_any()
    assert tracking_id is not None
    assert session_id is not None
    return PutEventsRequest(tracking_id, user_id, session_id, tuple(events))


def _event(check: _Checker, raw: Any, path: str) -> Event | None:
    if not isinstance(raw, Mapping):
        check.fail(path, "Member must be a structure", show=False)
        return None
    before = len(check.errors)

    def text(name: str, max_len: int, *, required: bool = False) -> str | None:
        return check.string(
            raw.get(name),
            f"{path}.{name}",
            max_len=max_len,
            min_len=1,
            required=required,
            sensitive=True,
        )

    event_type = text("eventType", 256, required=True)
    event_id = text("eventId", 256)
    item_id = text("itemId", 256)
    recommendation_id = text("recommendationId", 40)
    sent_at = _timestamp(check, raw.get("sentAt"), f"{path}.sentAt")
    value = raw.get("eventValue")
    event_value: float | None = None
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            check.fail(f"{path}.eventValue", "Member must be a number", show=False)
        elif not math.isfinite(value):
            check.fail(f"{path}.eventValue", "Member must be a finite number", show=False)
        else:
            event_value = float(value)
    properties = _properties(check, raw.get("properties"), f"{path}.properties")
    impression = check.string_list(
        raw.get("impression"),
        f"{path}.impression",
        max_items=MAX_IMPRESSION,
        min_items=1,
        item_max=256,
        item_min=1,
        required=False,
        sensitive=True,
    )
    source = None
    attribution = raw.get("metricAttribution")
    if attribution is not None:
        if not isinstance(attribution, Mapping):
            check.fail(f"{path}.metricAttribution", "Member must be a structure", show=False)
        else:
            source = check.string(
                attribution.get("eventAttributionSource"),
                f"{path}.metricAttribution.eventAttributionSource",
                max_len=1024,
                pattern=_ATTRIBUTION_SOURCE,
                required=True,
                sensitive=True,
            )
    if len(check.errors) > before or event_type is None or sent_at is None:
        return None
    return Event(
        event_type,
        sent_at,
        item_id,
        event_value,
        event_id,
        properties,
        recommendation_id,
        None if impression is None else tuple(impression),
        source,
    )


def _timestamp(check: _Checker, value: Any, path: str) -> float | None:
    if value is None:
        check.fail(path, "Member must not be null")
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float):
        check.fail(path, "Member must be a timestamp in epoch seconds", show=False)
        return None
    if not math.isfinite(value) or value < 0:
        check.fail(path, "Member must be a timestamp in epoch seconds", show=False)
        return None
    return float(value)


def _properties(check: _Checker, value: Any, path: str) -> Mapping[str, Any] | None:
    text = check.string(value, path, max_len=MAX_PROPERTIES, min_len=1, sensitive=True)
    if text is None:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        check.fail(path, "Member must be a JSON object", show=False)
        return None
    if not isinstance(parsed, dict):
        check.fail(path, "Member must be a JSON object", show=False)
        return None
    reserved = sorted(k for k in parsed if k.lower() in RESERVED_PROPERTIES)
    if reserved:
        check.fail(path, f"Member must not use the reserved keys {', '.join(reserved)}", show=False)
        return None
    return parsed
