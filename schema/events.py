"""The types of `Mutation.recordEvents`: what a frontend reports users doing."""

from datetime import datetime

import strawberry

from resolvers import events as recording


@strawberry.input(
    description=(
        "One thing a user did, as Personalize's PutEvents takes it. Send the "
        "recommendationId and the impression (the item ids shown) of the list the user "
        "acted on, so Personalize can attribute the event."
    )
)
class EventInput:
    event_type: str = strawberry.field(
        description="The event type the tracker's dataset knows, e.g. view or purchase."
    )
    item_id: strawberry.ID | None = strawberry.field(default=None, description="The item.")
    event_value: float | None = strawberry.field(
        default=None, description="A value such as a rating or a price, if the dataset has one."
    )
    properties: str | None = strawberry.field(
        default=None,
        description="Extra dataset columns as a JSON object string, at most 1,024 characters.",
    )
    sent_at: datetime | None = strawberry.field(
        default=None, description="When it happened; omitted, now."
    )
    recommendation_id: strawberry.ID | None = strawberry.field(
        default=None, description="The recommendationId of the list the item came from."
    )
    impression: list[strawberry.ID] | None = strawberry.field(
        default=None, description="The item ids that list showed (1..25), in order."
    )
    event_id: str | None = strawberry.field(
        default=None, description="Your id for the event, to deduplicate."
    )
    attribution_source: str | None = strawberry.field(
        default=None,
        description=(
            "The attributionSource of the list acted on (an experiment's variant): sent as "
            "metricAttribution.eventAttributionSource; 1..1024 printable ASCII."
        ),
    )


@strawberry.type(description="What became of the events of one recordEvents call.")
class RecordEventsResult:
    accepted: int = strawberry.field(description="Events taken for delivery (all of them).")
    delivered: bool = strawberry.field(
        description=(
            "Whether Personalize had them before this answer; false means they are "
            "queued and will be delivered, with retries."
        )
    )


async def record_events(
    info: strawberry.Info,
    session_id: str,
    events: list[EventInput],
    user_id: strawberry.ID | None = None,
) -> RecordEventsResult:
    """`Mutation.recordEvents`: Strawberry reads its arguments from this signature."""
    recorded = await recording.record_events(info, session_id, events, user_id)
    return RecordEventsResult(accepted=recorded.accepted, delivered=recorded.delivered)
