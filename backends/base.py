"""The one protocol every backend implements."""

from typing import Protocol

from domain.request import RecommendationRequest
from domain.result import RecommendationResult, Source


class RecommendationBackend(Protocol):
    """Turns one request into one Personalize call.

    Implementations raise only `errors.SubgraphError` subclasses for failures a client
    should hear about; anything else is a bug and is masked.
    """

    @property
    def source(self) -> Source:
        """What `Recommendations.source` reports for answers from this backend."""
        ...

    async def recommend(self, request: RecommendationRequest) -> RecommendationResult:
        """Make the call and return the parsed answer."""
        ...
