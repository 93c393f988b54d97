"""The per-request loader that turns the fields of one operation into distinct concurrent calls.

aiodataloader gathers every `load()` made in one tick (aliases, `_entities` batches,
nested lists) and hands us the distinct keys; equal requests share one call. Each key
settles alone: one failed call fails only the fields that asked for it. The loader also
holds the operation's budget (distinct calls) and deadline.
"""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiodataloader import DataLoader

from backends.guard import GuardedBackend
from backends.request import RecommendationRequest, RecommendationResult
from errors import OperationTooExpensive


@dataclass(frozen=True, slots=True)
class Answer:
    """A result together with the backend that produced it (for `Recommendations.source`)."""

    result: RecommendationResult
    source: str


class RecommendationLoader(DataLoader[RecommendationRequest, Answer]):
    """Loads recommendations for one GraphQL operation; never shared between operations."""

    def __init__(self, backend: GuardedBackend, *, max_calls: int, deadline: float) -> None:
        super().__init__()
        self._backend = backend
        self._calls_left = max_calls
        self._max_calls = max_calls
        # On the time.monotonic clock: every call of the operation ends by then.
        self.deadline = deadline

    @property
    def calls_made(self) -> int:
        return self._max_calls - self._calls_left

    # aiodataloader accepts an Exception in place of a value; its stubs do not say so.
    async def batch_load_fn(  # type: ignore[override]
        self, keys: Sequence[RecommendationRequest]
    ) -> list[Answer | Exception]:
        outcomes = await asyncio.gather(*(self._call(key) for key in keys), return_exceptions=True)
        answers: list[Answer | Exception] = []
        for key, outcome in zip(keys, outcomes, strict=True):
            if isinstance(outcome, Exception):
                # A failure is an answer for the fields waiting now, never a cached one.
                self.clear(key)
                answers.append(outcome)
            elif isinstance(outcome, BaseException):
                # Cancellation and interpreter exits must propagate, not become a field error.
                raise outcome
            else:
                answers.append(outcome)
        return answers

    async def _call(self, key: RecommendationRequest) -> Answer:
        # Spent in the order the fields asked, before any await: the first N distinct
        # calls go out and the rest cost nothing.
        if self._calls_left <= 0:
            raise OperationTooExpensive(
                f"this operation needs more than {self._max_calls} distinct Personalize calls; "
                f"use case {key.use_case!r} was not called"
            )
        self._calls_left -= 1
        result = await self._backend.recommend(key, self.deadline)
        return Answer(result=result, source=self._backend.source)


@dataclass(frozen=True, slots=True)
class Loaders:
    """Every loader of one request."""

    recommendations: RecommendationLoader


def operation_loaders(backend: GuardedBackend, *, max_calls: int, deadline_s: float) -> Loaders:
    """Fresh loaders for one operation whose deadline starts now."""
    return Loaders(
        recommendations=RecommendationLoader(
            backend, max_calls=max_calls, deadline=time.monotonic() + deadline_s
        )
    )
