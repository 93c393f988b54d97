"""`Mutation.recordEvents`: check events against personalize-events' model, then queue them.

botocore's model (personalize-events 2018-03-22, PutEvents): sessionId and userId
1..256 characters; 1..10 events; eventType 1..256; itemId 1..256; properties a JSON
string of 1..1,024; recommendationId 1..40; impression 1..25 ids of 1..256;
metricAttribution.eventAttributionSource 1..1,024 printable ASCII (not all spaces),
the `attributionSource` of the list acted on (README: Experiments). Nothing is
queued unless every event passes. Its documentation also reserves some `properties`
keys. A batch Personalize still refuses while the call waits is reported to the client.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import strawberry

from domain.errors import InvalidArgument, NotConfigured
from resolvers.arguments import given
from settings import ATTRIBUTION_SOURCE


class Event(Protocol):
    """One event as `EventInput` (the schema's input type) carries it."""

    @property
    def event_type(self) -> str: ...
    @property
    def item_id(self) -> str | None: ...
    @property
    def event_value(self) -> float | None: ...
    @property
    def properties(self) -> str | None: ...
    @property
    def sent_at(self) -> datetime | None: ...
    @property
    def recommendation_id(self) -> str | None: ...
    @property
    def impression(self) -> Sequence[str] | None: ...
    @property
    def event_id(self) -> str | None: ...
    @property
    def attribution_source(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class EventsRecorded:
    """What became of one call's events; the schema shows it as `RecordEventsResult`."""

    accepted: int
    delivered: bool


MAX_EVENTS = 10
MAX_ID = 256
MAX_PROPERTIES = 1024
MAX_RECOMMENDATION_ID = 40
MAX_IMPRESSION = 25
MAX_ATTRIBUTION_SOURCE = 1024
# PutEvents' documentation: these may not be `properties` keys (compared ignoring case).
RESERVED_PROPERTIES = frozenset(
    {"userid", "sessionid", "eventtype", "timestamp", "recommendationid", "impression"}
)


def _text(value: Any, where: str, limit: int) -> str:
    text = str(value)
    if not 1 <= len(text) <= limit:
        raise InvalidArgument(f"{where} must be 1..{limit} characters")
    return text


def _event(event: Event, where: str) -> dict[str, Any]:
    wire: dict[str, Any] = {"eventType": _text(event.event_type, f"{where}.eventType", MAX_ID)}
    sent_at = event.sent_at if isinstance(event.sent_at, datetime) else datetime.now(UTC)
    if sent_at.tzinfo is None:
        sent_at = sent_at.replace(tzinfo=UTC)
    if sent_at.timestamp() < 0:
        raise InvalidArgument(f"{where}.sentAt must not be before 1970")
    wire["sentAt"] = sent_at.timestamp()
    if given(event.item_id):
        wire["itemId"] = _text(event.item_id, f"{where}.itemId", MAX_ID)
    if event.event_value is not None and given(event.event_value):
        if not math.isfinite(event.event_value):
            raise InvalidArgument(f"{where}.eventValue must be a finite number")
        wire["eventValue"] = event.event_value
    if given(event.properties):
        properties = _text(event.properties, f"{where}.properties", MAX_PROPERTIES)
        try:
            parsed = orjson.loads(properties)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise InvalidArgument(f"{where}.properties must be a JSON object")
        reserved = sorted(k for k in parsed if k.lower() in RESERVED_PROPERTIES)
        if reserved:
            raise InvalidArgument(
                f"{where}.properties may not use the reserved key(s) {', '.join(reserved)}"
            )
        wire["properties"] = properties
    if given(event.recommendation_id):
        wire["recommendationId"] = _text(
            event.recommendation_id, f"{where}.recommendationId", MAX_RECOMMENDATION_ID
        )
    if event.impression is not None and given(event.impression):
        shown = list(event.impression)
        if not 1 <= len(shown) <= MAX_IMPRESSION:
            raise InvalidArgument(f"{where}.impression must list 1..{MAX_IMPRESSION} item ids")
        wire["impression"] = [
            _text(item, f"{where}.impression[{i}]", MAX_ID) for i, item in enumerate(shown)
        ]
    if given(event.event_id):
        wire["eventId"] = _text(event.event_id, f"{where}.eventId", MAX_ID)
    source = event.attribution_source
    if given(source):
        text = str(source)
        if len(text) > MAX_ATTRIBUTION_SOURCE or not ATTRIBUTION_SOURCE.fullmatch(text):
            raise InvalidArgument(
                f"{where}.attributionSource must be 1..{MAX_ATTRIBUTION_SOURCE} printable "
                "ASCII characters, not all spaces"
            )
        wire["metricAttribution"] = {"eventAttributionSource": text}
    return wire


def put_events_params(
    tracking_id: str, user_id: Any, session_id: Any, events: Sequence[Event]
) -> dict[str, Any]:
    """The PutEvents request for one call of recordEvents, or InvalidArgument."""
    if not 1 <= len(events) <= MAX_EVENTS:
        raise InvalidArgument(f"events must hold 1..{MAX_EVENTS} events")
    params: dict[str, Any] = {
        "trackingId": tracking_id,
        "sessionId": _text(session_id, "sessionId", MAX_ID),
        "eventList": [_event(e, f"events[{i}]") for i, e in enumerate(events)],
    }
    if given(user_id):
        params["userId"] = _text(user_id, "userId", MAX_ID)
    return params


async def record_events(
    info: strawberry.Info, session_id: str, events: Sequence[Event], user_id: str | None
) -> EventsRecorded:
    """Check the events, queue them for delivery, and say whether they went out at once."""
    context = info.context
    tracking_id = context.settings.events.tracking_id
    if context.events is None or tracking_id is None:
        raise NotConfigured("no event tracker is configured")
    params = put_events_params(tracking_id, user_id, session_id, events)
    delivered = await context.events.record(params)
    if context.experiments is not None:
        for event in params["eventList"]:
            attribution = event.get("metricAttribution")
            if attribution is not None:
                context.experiments.attributed(
                    attribution["eventAttributionSource"], event["eventType"]
                )
    return EventsRecorded(accepted=len(events), delivered=delivered)
