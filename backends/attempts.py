"""A backend that reports each attempt it makes, so a call's span can say how many there were.

It wraps the raw backend, below `GuardedBackend`, where each retry is a call of its own.
"""

from collections.abc import Awaitable, Callable

from backends.base import RecommendationBackend
from domain.request import RecommendationRequest
from domain.result import RecommendationResult, Source


class CountedAttempts:
    """A backend that calls `on_attempt` before each attempt it passes on."""

    def __init__(self, backend: RecommendationBackend, on_attempt: Callable[[], None]) -> None:
        self._backend = backend
        self._on_attempt = on_attempt
        self._recommend: Callable[[RecommendationRequest], Awaitable[RecommendationResult]] = (
            backend.recommend
        )

    @property
    def source(self) -> Source:
        return self._backend.source

    async def recommend(self, request: RecommendationRequest) -> RecommendationResult:
        self._on_attempt()
        return await self._recommend(request)
