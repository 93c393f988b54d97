"""The per-request loader that turns the fields of one operation into distinct concurrent calls.

aiodataloader gathers every `load()` made in one tick (aliases, `_entities` batches,
nested lists) and hands us the distinct keys; equal requests share one call. Each key
settles alone: one failed call fails only the fields that asked for it. The loader also
holds the operation's budget (distinct calls) and deadline.
"""

import asyncio
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiodataloader import DataLoader

from domain.errors import OperationTooExpensive
from domain.request import RecommendationRequest
from domain.result import RecommendationResult, Source


class DeadlineBackend(Protocol):
    """What the loader calls: `backends.guard.GuardedBackend`, or the cache in front of it."""

    @property
    def source(self) -> Source: ...

    async def recommend(
        self,
        request: RecommendationRequest,
        deadline: float,
        spend: Callable[[], None] | None = None,
    ) -> RecommendationResult: ...

    def stored(self, request: RecommendationRequest) -> RecommendationResult | None: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """A result together with the backend that produced it (for `Recommendations.source`)."""

    result: RecommendationResult
    source: Source


# Hears the outcome of one call of `RecommendationLoader.begin`: its answer or its failure.
Settled = Callable[[RecommendationRequest, "Answer | BaseException"], None]


def _tell(settled: Settled, key: RecommendationRequest, task: "asyncio.Task[Answer]") -> None:
    """From a call's done callbacks: what `settled` may not have heard (a listener
    ignores a key it has heard of already)."""
    if task.cancelled():
        settled(key, asyncio.CancelledError())
    else:
        settled(key, task.exception() or task.result())


class RecommendationLoader(DataLoader[RecommendationRequest, "asyncio.Task[Answer]"]):
    """Loads recommendations for one GraphQL operation; never shared between operations.

    The loader hands out one task per distinct call rather than the answer itself:
    aiodataloader settles a whole batch at once, and a field whose call failed at once
    must be free to start its fallback without waiting for its slowest sibling.
    """

    def __init__(
        self,
        backend: DeadlineBackend,
        *,
        max_calls: int,
        deadline: float,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        self._backend = backend
        # Told the number of distinct keys of every dispatched batch (a metric).
        self._on_batch = on_batch
        self._calls_left = max_calls
        self._max_calls = max_calls
        # On the time.monotonic clock: every call of the operation ends by then.
        self.deadline = deadline
        # Whether any key has been asked for (`begin` is only for a fresh loader).
        self._used = False
        # The task of the latest call started for each key; a failed call forgets its
        # key only while it is still that key's latest (see `_forget`).
        self._latest: dict[RecommendationRequest, asyncio.Task[Answer]] = {}

    @property
    def calls_left(self) -> int:
        """How many more distinct Personalize calls this operation may make."""
        return self._calls_left

    def load(self, key: RecommendationRequest) -> "asyncio.Future[asyncio.Task[Answer]]":
        self._used = True
        return super().load(key)

    async def answer(self, key: RecommendationRequest) -> Answer:
        """The answer for `key`, sharing the call with every equal request of the operation."""
        # A fresh stored answer needs no batch, task or call: the warm cache's fast path.
        result = self._backend.stored(key)
        if result is not None:
            return Answer(result=result, source=self._backend.source)
        task = await self.load(key)
        return await asyncio.shield(task)

    def begin(
        self, keys: Sequence[RecommendationRequest], settled: "Settled | None" = None
    ) -> list["Answer | asyncio.Task[Answer]"]:
        """Every key's answer, or the task of its call, started now as one batch.

        For an operation whose keys are all known before any is awaited (the compiled
        path, `schema.compiled`): no tick to wait for. The calls are the loader's
        own, so a later `answer` for one of these keys (a fallback's) joins its call.
        Stored answers are looked up per key given, as `answer` does per field (their
        hits are counted alike). `settled(key, outcome)` hears each call's answer or
        failure in the call's own task as soon as it is known, rather than a loop turn
        later from the task's done callbacks (it hears from those only when the call
        never ran: cancelled before it started). Only for a loader that has loaded
        nothing yet.
        """
        if self._used:
            raise RuntimeError("begin() is for a loader that has loaded nothing yet")
        self._used = True
        found: list[Answer | RecommendationRequest] = []
        new: dict[RecommendationRequest, None] = {}
        for key in keys:
            result = self._backend.stored(key)
            if result is None:
                new[key] = None
                found.append(key)
            else:
                found.append(Answer(result, self._backend.source))
        started = dict(zip(new, self._start(list(new), settled), strict=True))
        for key, task in started.items():
            self.prime(key, task)
        return [started[k] if isinstance(k, RecommendationRequest) else k for k in found]

    async def batch_load_fn(
        self, keys: Sequence[RecommendationRequest]
    ) -> list["asyncio.Task[Answer]"]:
        return self._start(keys)

    def _start(
        self, keys: Sequence[RecommendationRequest], settled: "Settled | None" = None
    ) -> list["asyncio.Task[Answer]"]:
        if not keys:
            return []
        if self._on_batch is not None:
            self._on_batch(len(keys))
        # Created in field order, so the budget is spent in the order fields asked.
        tasks = [asyncio.ensure_future(self._call(key, settled)) for key in keys]
        for key, task in zip(keys, tasks, strict=True):
            self._latest[key] = task
            task.add_done_callback(functools.partial(self._settled, key))
            if settled is not None:
                task.add_done_callback(functools.partial(_tell, settled, key))
        return tasks

    def _settled(self, key: RecommendationRequest, task: "asyncio.Task[Answer]") -> None:
        # A failure answers the fields waiting now and is never cached for later ones
        # (`_call` forgets it; this covers a call cancelled before it ran).
        if task.cancelled() or task.exception() is not None:
            self._forget(key, task)

    def _forget(self, key: RecommendationRequest, task: "asyncio.Task[Answer]") -> None:
        """Drop `key` if its latest call is still `task`: a loop turn after a failure, a
        fallback may already have asked for it again."""
        if self._latest.get(key) is task:
            del self._latest[key]
            self.clear(key)

    async def _call(self, key: RecommendationRequest, settled: "Settled | None" = None) -> Answer:
        spend = functools.partial(self._spend, key)
        try:
            result = await self._backend.recommend(key, self.deadline, spend)
        except BaseException as exc:
            # Forgotten at once, not a loop turn later: a field that asks for this key
            # from now on (a fallback's) makes the call again, on either path, whatever
            # else settles in the same turn.
            if self._latest.get(key) is asyncio.current_task():
                del self._latest[key]
            self.clear(key)
            if settled is not None:
                settled(key, exc)
            raise
        answer = Answer(result=result, source=self._backend.source)
        if settled is not None:
            settled(key, answer)
        return answer

    def _spend(self, key: RecommendationRequest) -> None:
        # Called by the backend only when a real Personalize call is about to go out:
        # stored answers and calls joined in flight cost the operation nothing.
        if self._calls_left <= 0:
            raise OperationTooExpensive(
                f"this operation needs more than {self._max_calls} distinct Personalize calls; "
                f"use case {key.use_case!r} was not called"
            )
        self._calls_left -= 1


@dataclass(frozen=True, slots=True)
class Loaders:
    """Every loader of one request."""

    recommendations: RecommendationLoader


def operation_loaders(
    backend: DeadlineBackend,
    *,
    max_calls: int,
    deadline_s: float,
    on_batch: Callable[[int], None] | None = None,
) -> Loaders:
    """Fresh loaders for one operation whose deadline starts now.

    `on_batch` is told the size of each batch the recommendations loader dispatches.
    """
    return Loaders(
        recommendations=RecommendationLoader(
            backend,
            max_calls=max_calls,
            deadline=time.monotonic() + deadline_s,
            on_batch=on_batch,
        )
    )
