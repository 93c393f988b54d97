"""Answers kept in this process, least recently used dropped first."""

import time
from collections import OrderedDict

from backends.entry import Entry
from domain.request import RecommendationRequest
from domain.result import RecommendationResult


class MemoryStore:
    """Answers in this process; past `max_entries` the least recently used go first.

    Results are immutable, so the stored objects themselves are handed out.
    """

    kind = "memory"

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        # request -> (entry, when it may be dropped)
        self._entries: OrderedDict[RecommendationRequest, tuple[Entry, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, request: RecommendationRequest) -> Entry | None:
        """The entry for `request` if one is kept: everything here is at hand."""
        found = self._entries.get(request)
        if found is None:
            return None
        entry, drop_at = found
        if time.time() >= drop_at:
            del self._entries[request]
            return None
        self._entries.move_to_end(request)
        return entry

    async def get(self, request: RecommendationRequest, budget: float) -> Entry | None:
        return self.peek(request)

    def put(
        self, request: RecommendationRequest, result: RecommendationResult, keep: float
    ) -> None:
        now = time.time()
        self._entries[request] = (Entry(result, now), now + keep)
        self._entries.move_to_end(request)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
