"""Scroll windows: the items a list's first page fetched, kept for its later pages.

A window lives in the configured answer store (`backends.store`: this process's memory,
or the Redis every replica shares) under a key of its own, `window:<id>`, which no
answer's key can take (answers are keyed by their use case's name). A window is stored
once, when its first page is answered, and only read afterwards; a store that loses it
(Redis down, the memory store's bound, `pagination.ttl` past) makes its cursors expire.
"""

from backends.store import Store
from domain.request import Operation, RecommendationRequest
from domain.result import RecommendationResult
from settings import CacheSettings, PaginationSettings


def _key(window_id: str) -> RecommendationRequest:
    return RecommendationRequest(
        operation=Operation.GET_RECOMMENDATIONS, arn="", use_case=f"window:{window_id}"
    )


class Windows:
    """Windows by id, in `store`, each kept `pagination.ttl` seconds."""

    def __init__(self, store: Store, pagination: PaginationSettings, cache: CacheSettings) -> None:
        self._store = store
        self._ttl = pagination.ttl
        # A later page waits for the store at most this long (Redis' own command timeout).
        self._budget = cache.redis_timeout

    @property
    def ttl(self) -> float:
        return self._ttl

    def keep(self, window_id: str, window: RecommendationResult) -> None:
        """Store `window` under `window_id` (a write that does not make the caller wait)."""
        self._store.put(_key(window_id), window, self._ttl)

    async def find(self, window_id: str) -> RecommendationResult | None:
        """The window stored under `window_id`, or None when the store has lost it."""
        entry = await self._store.get(_key(window_id), self._budget)
        if entry is None or entry.age() > self._ttl:
            return None
        return entry.result
