"""Fewer Personalize calls: successful answers kept per use case, and identical calls shared.

`CachedBackend` sits between the per-operation loader and `GuardedBackend` and has the
same `recommend(request, deadline)`. A fresh stored answer is returned without a call;
otherwise concurrent identical requests share one call (`backends.coalesce`), whose
success is stored for the use case's `cache_ttl` (plus `stale_ttl`). When that call
fails for a reason that is not the client's, an answer expired less than `stale_ttl`
ago is served instead, before any fallback is tried.

Answers live in a `backends.store.Store`: this process's memory (`MemoryStore`, an
LRU) or a Redis every replica shares (`RedisStore`, only ever an optimisation).
"""

import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from backends.coalesce import Coalescer
from backends.entry import Entry
from backends.guard import GuardedBackend
from backends.outcomes import outcome
from backends.store import Store
from domain.errors import SubgraphError
from domain.request import RecommendationRequest
from domain.result import RecommendationResult, Source
from observability.metrics import LATENCY_BUCKETS
from observability.tracing import CallSpans, note
from settings import Settings, UseCaseSettings

log = logging.getLogger(__name__)


class CallMetrics:
    """The counters of cache lookups, calls saved and calls made, on the app's own registry."""

    def __init__(self, registry: CollectorRegistry, use_cases: Iterable[str]) -> None:
        self.lookups = Counter(
            "personalize_subgraph_cache_lookups",
            "Cache lookups: hit (fresh answer), miss (Personalize was asked), "
            "stale (Personalize failed; an expired answer was served).",
            ["use_case", "outcome"],
            registry=registry,
        )
        self.saved = Counter(
            "personalize_subgraph_calls_saved",
            "Personalize calls not made: answered from the cache, or by joining "
            "an identical call already in flight.",
            ["use_case", "reason"],
            registry=registry,
        )
        self.calls = Counter(
            "personalize_subgraph_personalize_calls",
            "Personalize calls made (retries inside one call not counted apart), by outcome: "
            "ok, or the error's name (circuit_open and deadline_spent sent nothing).",
            ["use_case", "outcome"],
            registry=registry,
        )
        self.call_seconds = Histogram(
            "personalize_subgraph_personalize_call_seconds",
            "Personalize call latency by use case and outcome, retries and backoff included "
            "(the time a field waited for its answer, not one HTTP attempt).",
            ["use_case", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # Every series from the start, so dashboards see zeros rather than gaps.
        for name in use_cases:
            for lookup in ("hit", "miss", "stale"):
                self.lookups.labels(name, lookup)
            for reason in ("cache", "coalesced"):
                self.saved.labels(name, reason)
            self.calls.labels(name, "ok")
            self.call_seconds.labels(name, "ok")


class CachedBackend:
    """A fresh stored answer, else one call shared by identical requests, stored on success.

    Shared by all requests of the process; the loader calls it as it would GuardedBackend.
    """

    def __init__(
        self,
        backend: GuardedBackend,
        store: Store,
        settings: Settings,
        metrics: CallMetrics,
        spans: CallSpans | None = None,
    ) -> None:
        self._backend = backend
        # None: tracing is off, and nothing here touches OpenTelemetry.
        self._spans = spans
        self._store = store
        self._use_cases = settings.use_cases
        self._enabled = settings.cache.enabled
        self._metrics = metrics
        self._calls: Coalescer[RecommendationRequest, RecommendationResult] = Coalescer()
        self._hits: dict[str, tuple[Any, Any]] = {}
        self._answered: dict[str, tuple[Any, Any]] = {}

    @property
    def source(self) -> Source:
        return self._backend.source

    async def aclose(self) -> None:
        """Cancel the calls still in flight, at shutdown, before the backend closes."""
        await self._calls.aclose()

    def stored(self, request: RecommendationRequest) -> RecommendationResult | None:
        """A fresh answer the store has at hand, found without awaiting anything.

        The hot path of a warm cache: the loader answers from here before it creates any
        task. Lookups that wait (Redis) go through `recommend`.
        """
        if not self._enabled:
            return None
        case = self._use_cases.get(request.use_case)
        if case is None or case.cache_ttl <= 0:
            return None
        entry = self._store.peek(request)
        if entry is None or entry.age() >= case.cache_ttl:
            return None
        return self._hit(request, entry)

    def _hit(self, request: RecommendationRequest, entry: Entry) -> RecommendationResult:
        """Count a fresh stored answer and hand it out."""
        hit, saved = self._hit_counters(request.use_case)
        hit.inc()
        saved.inc()
        if self._spans is not None:
            note("cache_hit", request.use_case)
        return entry.result

    def _hit_counters(self, use_case: str) -> tuple[Any, Any]:
        # labels() looks its child up under a lock each time; hits are the hot path.
        counters = self._hits.get(use_case)
        if counters is None:
            counters = (
                self._metrics.lookups.labels(use_case, "hit"),
                self._metrics.saved.labels(use_case, "cache"),
            )
            self._hits[use_case] = counters
        return counters

    def _ok_counters(self, use_case: str) -> tuple[Any, Any]:
        # Every successful call counts here: looked up once per use case, as for hits.
        counters = self._answered.get(use_case)
        if counters is None:
            counters = (
                self._metrics.calls.labels(use_case, "ok"),
                self._metrics.call_seconds.labels(use_case, "ok"),
            )
            self._answered[use_case] = counters
        return counters

    async def recommend(
        self,
        request: RecommendationRequest,
        deadline: float,
        spend: Callable[[], None] | None = None,
    ) -> RecommendationResult:
        """The answer for `request`; `deadline` is on the `time.monotonic` clock.

        `spend` is called only when a new Personalize call is about to be made (not for
        a stored answer, nor for joining a call in flight), and may refuse by raising.
        """
        case = self._use_cases.get(request.use_case)
        keep = self._enabled and case is not None and case.keeps_answers
        entry: Entry | None = None
        if keep:
            entry = await self._store.get(request, deadline - time.monotonic())
            if case is not None and entry is not None and entry.age() < case.cache_ttl:
                return self._hit(request, entry)
        call = functools.partial(self._call, request, deadline, case if keep else None)
        try:
            result, joined = await self._calls.run(request, call, deadline, spend)
        except SubgraphError as exc:
            if (
                exc.degradable
                and case is not None
                and entry is not None
                and entry.age() < case.cache_ttl + case.stale_ttl
            ):
                self._metrics.lookups.labels(request.use_case, "stale").inc()
                if self._spans is not None:
                    note("stale_served", request.use_case)
                log.info(
                    "served a stale answer", extra={"use_case": request.use_case, "code": exc.code}
                )
                return entry.result
            if keep:
                self._metrics.lookups.labels(request.use_case, "miss").inc()
            raise
        if joined:
            self._metrics.saved.labels(request.use_case, "coalesced").inc()
            if self._spans is not None:
                note("coalesced", request.use_case)
        if keep:
            self._metrics.lookups.labels(request.use_case, "miss").inc()
        return result

    async def _call(
        self, request: RecommendationRequest, deadline: float, keep: UseCaseSettings | None
    ) -> RecommendationResult:
        if self._spans is None:
            return await self._timed_call(request, deadline, keep)
        with self._spans.call(request) as call:
            try:
                return await self._timed_call(request, deadline, keep)
            except BaseException as exc:
                call.outcome = outcome(exc)
                raise

    async def _timed_call(
        self, request: RecommendationRequest, deadline: float, keep: UseCaseSettings | None
    ) -> RecommendationResult:
        started = time.perf_counter()
        try:
            result = await self._backend.recommend(request, deadline)
        except BaseException as exc:
            label = outcome(exc)
            self._metrics.calls.labels(request.use_case, label).inc()
            self._metrics.call_seconds.labels(request.use_case, label).observe(
                time.perf_counter() - started
            )
            raise
        calls, seconds = self._ok_counters(request.use_case)
        calls.inc()
        seconds.observe(time.perf_counter() - started)
        if keep is not None:
            self._store.put(request, result, keep.cache_ttl + keep.stale_ttl)
        return result
