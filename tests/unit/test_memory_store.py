"""The in-process answer store is bounded in bytes as well as in entries."""

import tracemalloc

from backends.memory_store import MemoryStore, size_of
from domain.request import Operation, RecommendationRequest
from domain.result import RecommendationResult, ResultItem

ARN = "arn:aws:personalize:us-east-1:000000000000:recommender/best-sellers"


def request(n: int, context: int = 0) -> RecommendationRequest:
    """A request whose client-given context holds `context` characters."""
    return RecommendationRequest(
        Operation.GET_RECOMMENDATIONS,
        ARN,
        "bestSellers",
        num_results=25,
        context=(("DEVICE", f"{n}:" + "d" * context),),
    )


def result(n: int) -> RecommendationResult:
    return RecommendationResult(f"rec-{n}", tuple(ResultItem(f"item-{i}", 0.5) for i in range(25)))


def test_the_charge_is_at_least_what_an_answer_holds() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        made = request(1, context=50_000), result(1)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert size_of(made[0]) + size_of(made[1]) >= held


def test_the_byte_budget_evicts_the_least_recently_used() -> None:
    store = MemoryStore(max_entries=10_000, max_bytes=1_000_000)
    # Each request carries 100 KB of context: ten do not fit in 1 MB.
    requests = [request(n, context=100_000) for n in range(20)]
    for n, key in enumerate(requests):
        store.put(key, result(n), keep=60)
        assert store.size <= 1_000_000
    kept = [key for key in requests if store.peek(key) is not None]
    assert 5 <= len(kept) < 10
    assert kept == requests[-len(kept) :]
    # Small answers are many more within the same budget.
    small = MemoryStore(max_entries=10_000, max_bytes=1_000_000)
    for n in range(20):
        small.put(request(n), result(n), keep=60)
    assert len(small) == 20


def test_an_answer_over_the_budget_is_not_kept() -> None:
    store = MemoryStore(max_entries=10, max_bytes=50_000)
    store.put(request(0, context=100_000), result(0), keep=60)
    assert len(store) == 0
    assert store.size == 0
    store.put(request(1), result(1), keep=60)
    assert len(store) == 1
    # Put again: charged once.
    size = store.size
    store.put(request(1), result(1), keep=60)
    assert store.size == size
