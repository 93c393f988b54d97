"""The Personalize resources the embedded engine serves: campaigns, recommenders, filters.

ARNs use region us-east-1 and account 000000000000 so they look like real ones and pass
the service model's ARN pattern. The subgraph's demo configuration references exactly
these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

REGION = "us-east-1"
ACCOUNT = "000000000000"
ARN_PREFIX = f"arn:aws:personalize:{REGION}:{ACCOUNT}:"


class Recipe(StrEnum):
    """The model family behind a campaign or recommender."""

    USER_PERSONALIZATION = "user-personalization"
    POPULARITY = "popularity-count"
    SIMS = "sims"
    PERSONALIZED_RANKING = "personalized-ranking"


ResourceKind = Literal["campaign", "recommender"]


@dataclass(frozen=True)
class Deployment:
    """A campaign or recommender: which recipe answers it and which inputs it needs."""

    name: str
    kind: ResourceKind
    recipe: Recipe
    requires_user: bool = False
    requires_item: bool = False
    event_types: tuple[str, ...] | None = None
    """For popularity: the event types counted (None = all)."""

    @property
    def arn(self) -> str:
        return f"{ARN_PREFIX}{self.kind}/{self.name}"


@dataclass(frozen=True)
class FilterDefinition:
    """A filter resource: a name and its expression in Personalize's filter language."""

    name: str
    expression: str

    @property
    def arn(self) -> str:
        return f"{ARN_PREFIX}filter/{self.name}"


@dataclass(frozen=True)
class Resources:
    """Everything one engine serves."""

    deployments: tuple[Deployment, ...]
    filters: tuple[FilterDefinition, ...]


DEMO_RESOURCES = Resources(
    deployments=(
        Deployment(
            "recommended-for-you", "recommender", Recipe.USER_PERSONALIZATION, requires_user=True
        ),
        Deployment("best-sellers", "recommender", Recipe.POPULARITY, event_types=("Purchase",)),
        Deployment("most-viewed", "recommender", Recipe.POPULARITY, event_types=("View",)),
        Deployment("customers-who-viewed-x", "recommender", Recipe.SIMS, requires_item=True),
        Deployment(
            "user-personalization", "campaign", Recipe.USER_PERSONALIZATION, requires_user=True
        ),
        Deployment("sims", "campaign", Recipe.SIMS, requires_item=True),
        Deployment("popularity", "campaign", Recipe.POPULARITY),
        Deployment(
            "personalized-ranking", "campaign", Recipe.PERSONALIZED_RANKING, requires_user=True
        ),
    ),
    filters=(
        FilterDefinition(
            "exclude-purchased", 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("Purchase")'
        ),
        FilterDefinition("by-category", "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)"),
        FilterDefinition("max-price", "INCLUDE ItemID WHERE Items.PRICE <= $MAX_PRICE"),
    ),
)
