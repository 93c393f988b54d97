"""Answers kept in this process, least recently used dropped first."""

import dataclasses
import sys
import time
from collections import OrderedDict
from enum import Enum

from backends.entry import Entry
from domain.request import RecommendationRequest
from domain.result import RecommendationResult

# Bytes charged per entry besides what its request and result hold: the entry, its
# tuple and the dict's slot.
ENTRY_BYTES = 256


def size_of(value: object) -> int:
    """The bytes `value` holds, its strings and tuples counted (enums are shared)."""
    if isinstance(value, Enum) or value is None:
        return 0
    if isinstance(value, str):
        return sys.getsizeof(value)
    if isinstance(value, tuple):
        return sys.getsizeof(value) + sum(size_of(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        held = sys.getsizeof(value) + sys.getsizeof(getattr(value, "__dict__", None))
        return held + sum(size_of(getattr(value, f.name)) for f in dataclasses.fields(value))
    return sys.getsizeof(value)


class MemoryStore:
    """Answers in this process; past `max_entries`, or past `max_bytes` held in all, the
    least recently used go first.

    Requests carry client text (ids, context, filter values, up to hundreds of KB each),
    so the count alone does not bound what the store holds. Results are immutable, so
    the stored objects themselves are handed out.
    """

    kind = "memory"

    def __init__(self, max_entries: int, max_bytes: int | None = None) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        # request -> (entry, when it may be dropped, bytes charged)
        self._entries: OrderedDict[RecommendationRequest, tuple[Entry, float, int]] = OrderedDict()
        self.size = 0

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, request: RecommendationRequest) -> Entry | None:
        """The entry for `request` if one is kept: everything here is at hand."""
        found = self._entries.get(request)
        if found is None:
            return None
        entry, drop_at, cost = found
        if time.time() >= drop_at:
            del self._entries[request]
            self.size -= cost
            return None
        self._entries.move_to_end(request)
        return entry

    async def get(self, request: RecommendationRequest, budget: float) -> Entry | None:
        return self.peek(request)

    def put(
        self, request: RecommendationRequest, result: RecommendationResult, keep: float
    ) -> None:
        cost = ENTRY_BYTES + size_of(request) + size_of(result)
        if self._max_bytes is not None and cost > self._max_bytes:
            return
        now = time.time()
        previous = self._entries.pop(request, None)
        if previous is not None:
            self.size -= previous[2]
        self._entries[request] = (Entry(result, now), now + keep, cost)
        self.size += cost
        while len(self._entries) > self._max_entries or (
            self._max_bytes is not None and self.size > self._max_bytes
        ):
            _, (_, _, dropped) = self._entries.popitem(last=False)
            self.size -= dropped
