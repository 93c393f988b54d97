"""The types whose shape does not depend on configuration."""

from enum import Enum

import strawberry


@strawberry.enum(description="Where a list of recommendations came from.")
class RecommendationSource(Enum):
    PERSONALIZE = strawberry.enum_value("PERSONALIZE", description="Amazon Personalize.")
    LOCAL = strawberry.enum_value(
        "LOCAL", description="The embedded engine (local_personalize), offline."
    )
    FALLBACK = strawberry.enum_value(
        "FALLBACK",
        description=(
            "The use case failed upstream and its configured fallback answered "
            "(another use case or a static list); there is no recommendationId."
        ),
    )


@strawberry.type(description="One item-dataset column returned with a recommended item.")
class MetadataEntry:
    key: str
    value: str


@strawberry.input(
    description=(
        "A contextual attribute for this request (device, time of day...). "
        "Key: [A-Za-z0-9_]{1,150}; value: at most 1000 characters; at most 150 entries."
    )
)
class ContextEntry:
    key: str
    value: str


@strawberry.type(
    description=(
        "Where a scrolled list stands (Relay's names): pass endCursor as `after` for the "
        "next page. Selecting it (or passing `after`) makes the list scroll: its first page "
        "fetches a window of items once and later pages read it, with no call."
    )
)
class PageInfo:
    end_cursor: str | None = strawberry.field(
        description="The cursor after this page's last item: pass it as `after` for the next page."
    )
    has_next_page: bool = strawberry.field(
        description="Whether the window holds items after this page."
    )


@strawberry.type(
    description=(
        "The experiment a list was asked for and the variant that answered (README: Experiments)."
    )
)
class ExperimentAssignment:
    name: str = strawberry.field(description="The experiment, as configured.")
    variant: str = strawberry.field(
        description="The variant this user (or session) is bucketed into; sticky."
    )
