"""Fewer Personalize calls: successful answers kept per use case, and identical calls shared.

`CachedBackend` sits between the per-operation loader and `GuardedBackend` and has the
same `recommend(request, deadline)`. A fresh stored answer is returned without a call;
otherwise concurrent identical requests share one call (`backends.coalesce`), whose
success is stored for the use case's `cache_ttl` (plus `stale_ttl`). When that call
fails for a reason that is not the client's, an answer expired less than `stale_ttl`
ago is served instead, before any fallback is tried.

Answers live in a `backends.store.Store`: this process's memory or a Redis every
replica shares. What happens is reported to a `backends.telemetry.CallObserver` (and
a `CallTracer` when tracing is on), never to a metrics library directly.
"""

import functools
import logging
import time
from collections.abc import Callable, Mapping

from backends.coalesce import Coalescer
from backends.entry import Entry
from backends.guard import GuardedBackend
from backends.outcomes import OK, outcome
from backends.store import Store
from backends.telemetry import SILENT, CallObserver, CallTracer
from domain.errors import SubgraphError
from domain.request import RecommendationRequest
from domain.result import RecommendationResult, Source
from settings import CacheSettings, UseCaseSettings

log = logging.getLogger(__name__)


class CachedBackend:
    """A fresh stored answer, else one call shared by identical requests, stored on success.

    Shared by all requests of the process; the loader calls it as it would GuardedBackend.
    """

    def __init__(
        self,
        backend: GuardedBackend,
        store: Store,
        cache: CacheSettings,
        use_cases: Mapping[str, UseCaseSettings],
        observer: CallObserver = SILENT,
        tracer: CallTracer | None = None,
    ) -> None:
        self._backend = backend
        # None: tracing is off, and nothing here touches OpenTelemetry.
        self._tracer = tracer
        self._store = store
        self._use_cases = use_cases
        self._enabled = cache.enabled
        self._observer = observer
        self._calls: Coalescer[RecommendationRequest, RecommendationResult] = Coalescer()

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
        self._observer.hit(request.use_case)
        if self._tracer is not None:
            self._tracer.note("cache_hit", request.use_case)
        return entry.result

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
                self._observer.stale(request.use_case)
                if self._tracer is not None:
                    self._tracer.note("stale_served", request.use_case)
                log.info(
                    "served a stale answer", extra={"use_case": request.use_case, "code": exc.code}
                )
                return entry.result
            if keep:
                self._observer.miss(request.use_case)
            raise
        if joined:
            self._observer.coalesced(request.use_case)
            if self._tracer is not None:
                self._tracer.note("coalesced", request.use_case)
        if keep:
            self._observer.miss(request.use_case)
        return result

    async def _call(
        self, request: RecommendationRequest, deadline: float, keep: UseCaseSettings | None
    ) -> RecommendationResult:
        if self._tracer is None:
            return await self._timed_call(request, deadline, keep)
        with self._tracer.call(request) as call:
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
            self._observer.called(request.use_case, outcome(exc), time.perf_counter() - started)
            raise
        self._observer.called(request.use_case, OK, time.perf_counter() - started)
        if keep is not None:
            self._store.put(request, result, keep.cache_ttl + keep.stale_ttl)
        return result
