"""The per-request loader that turns the fields of one operation into distinct concurrent calls.

aiodataloader gathers every `load()` made in one tick (aliases, `_entities` batches,
nested lists) and hands us the distinct keys; equal requests share one call. Each key
settles alone: one failed call fails only the fields that asked for it.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from aiodataloader import DataLoader

from backends.base import RecommendationBackend
from backends.request import RecommendationRequest, RecommendationResult


@dataclass(frozen=True, slots=True)
class Answer:
    """A result together with the backend that produced it (for `Recommendations.source`)."""

    result: RecommendationResult
    source: str


class RecommendationLoader(DataLoader[RecommendationRequest, Answer]):
    """Loads recommendations for one GraphQL request; never shared between requests."""

    def __init__(self, backend: RecommendationBackend, limit: asyncio.Semaphore) -> None:
        super().__init__()
        self._backend = backend
        # App-wide: bounds calls in flight across every request, not per request.
        self._limit = limit

    # aiodataloader accepts an Exception in place of a value; its stubs do not say so.
    async def batch_load_fn(  # type: ignore[override]
        self, keys: Sequence[RecommendationRequest]
    ) -> list[Answer | Exception]:
        outcomes = await asyncio.gather(*(self._call(key) for key in keys), return_exceptions=True)
        answers: list[Answer | Exception] = []
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                answers.append(outcome)
            elif isinstance(outcome, BaseException):
                # Cancellation and interpreter exits must propagate, not become a field error.
                raise outcome
            else:
                answers.append(outcome)
        return answers

    async def _call(self, key: RecommendationRequest) -> Answer:
        async with self._limit:
            result = await self._backend.recommend(key)
        return Answer(result=result, source=self._backend.source)


@dataclass(frozen=True, slots=True)
class Loaders:
    """Every loader of one request."""

    recommendations: RecommendationLoader
