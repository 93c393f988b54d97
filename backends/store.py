"""Where answers are kept: what a store does, and the store the settings ask for."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from backends.entry import Entry
from backends.memory_store import MemoryStore
from backends.redis_store import RedisStore
from domain.request import RecommendationRequest
from domain.result import RecommendationResult
from settings import CacheSettings


class Store(Protocol):
    """Where answers are kept; a store never raises for its own failures."""

    @property
    def kind(self) -> str:
        """What the store is ("memory", "redis"), as the configuration names it."""
        ...

    def peek(self, request: RecommendationRequest) -> Entry | None:
        """The entry for `request` if it is at hand now, without waiting for anything.

        None when nothing is kept, and also when finding out would mean waiting (a
        store in another process): `get` is the look that may wait.
        """
        ...

    async def get(self, request: RecommendationRequest, budget: float) -> Entry | None:
        """The entry for `request`, or None; `budget` (seconds) bounds any waiting."""
        ...

    def put(
        self, request: RecommendationRequest, result: RecommendationResult, keep: float
    ) -> None:
        """Keep `result` for `keep` seconds, without making the caller wait."""
        ...


@asynccontextmanager
async def open_store(settings: CacheSettings) -> AsyncIterator[Store]:
    """The configured store, open for the app's lifetime."""
    if settings.backend == "redis":
        async with RedisStore.open(settings) as store:
            yield store
    else:
        yield MemoryStore(settings.max_entries, settings.max_bytes)
