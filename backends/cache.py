"""Fewer Personalize calls: successful answers kept per use case, and identical calls shared.

`CachedBackend` sits between the per-operation loader and `GuardedBackend` and has the
same `recommend(request, deadline)`. A fresh stored answer is returned without a call;
otherwise concurrent identical requests share one call (`backends.coalesce`), whose
success is stored for the use case's `cache_ttl` (plus `stale_ttl`). When that call
fails for a reason that is not the client's, an answer expired less than `stale_ttl`
ago is served instead, before any fallback is tried.

Answers live in this process (`MemoryStore`, an LRU) or in a Redis every replica shares
(`RedisStore`). Redis is only ever an optimisation: an error or a slow answer is a miss,
the call goes to Personalize, and an outage is logged once, not per request.
"""

import asyncio
import functools
import hashlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import MaxConnectionsError, RedisError

from backends.coalesce import Coalescer
from backends.guard import GuardedBackend
from domain.errors import SubgraphError
from domain.request import RecommendationRequest
from domain.result import RecommendationResult, ResultItem, Source
from observability.metrics import LATENCY_BUCKETS
from observability.tracing import CallSpans, note
from settings import CacheSettings, Settings, UseCaseSettings

log = logging.getLogger(__name__)

# Part of every Redis key: a change to the stored format changes the keys, so replicas of
# two versions never read each other's entries.
_FORMAT = "v1"
# After a Redis error, lookups and writes skip Redis this long instead of paying a
# timeout per request; the first request after it tries again.
_OUTAGE_PAUSE = 1.0
# Connections to Redis per process; beyond it a lookup is a miss rather than a wait.
_MAX_CONNECTIONS = 256
# Writes in flight per process; beyond it (Redis far slower than Personalize) answers
# are simply not stored.
_MAX_PENDING_WRITES = 1_000


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored answer and when it was stored.

    Times are wall-clock (`time.time`): Redis entries outlive the process that wrote
    them and are read by other replicas.
    """

    result: RecommendationResult
    stored_at: float

    def age(self) -> float:
        return time.time() - self.stored_at


class AnswerStore(Protocol):
    """Where answers are kept; a store never raises for its own failures."""

    async def get(self, request: RecommendationRequest, budget: float) -> Entry | None:
        """The entry for `request`, or None; `budget` (seconds) bounds any waiting."""
        ...

    def put(
        self, request: RecommendationRequest, result: RecommendationResult, keep: float
    ) -> None:
        """Keep `result` for `keep` seconds, without making the caller wait."""
        ...


def cache_key(request: RecommendationRequest, prefix: str = "") -> str:
    """A key naming every field of `request`, the same in every process and replica.

    Built from the request's JSON (fields in declaration order, collections already
    sorted tuples) rather than `hash()`, which is salted per process.
    """
    digest = hashlib.sha256(orjson.dumps(request)).hexdigest()
    return f"{prefix}{_FORMAT}:{request.use_case}:{digest}"


def encode(entry: Entry) -> bytes:
    """An entry as compact JSON: items as arrays, in ResultItem's field order."""
    result = entry.result
    return orjson.dumps(
        {
            "at": entry.stored_at,
            "id": result.recommendation_id,
            "items": [
                [i.item_id, i.score, i.promotion_name, i.reasons, i.metadata] for i in result.items
            ],
        }
    )


def decode(raw: bytes | str) -> Entry:
    """The entry `encode` wrote; ValueError when `raw` is not one."""
    try:
        data: Any = orjson.loads(raw)
        items = tuple(
            ResultItem(
                item_id=str(item_id),
                score=None if score is None else float(score),
                promotion_name=promotion,
                reasons=tuple(str(r) for r in reasons),
                metadata=None if metadata is None else tuple((str(k), str(v)) for k, v in metadata),
            )
            for item_id, score, promotion, reasons, metadata in data["items"]
        )
        result = RecommendationResult(recommendation_id=data["id"], items=items)
        return Entry(result=result, stored_at=float(data["at"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a cached answer: {exc}") from None


class MemoryStore:
    """Answers in this process; past `max_entries` the least recently used go first.

    Results are immutable, so the stored objects themselves are handed out.
    """

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        # request -> (entry, when it may be dropped)
        self._entries: OrderedDict[RecommendationRequest, tuple[Entry, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, request: RecommendationRequest) -> Entry | None:
        """The entry for `request` if one is kept, without waiting (this store never does)."""
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


class _Outage:
    """Whether Redis failed a moment ago; logs once when an outage starts and once when it ends."""

    def __init__(self, where: str) -> None:
        self._where = where
        self._down = False
        self._retry_at = 0.0

    def skip(self) -> bool:
        return self._down and time.monotonic() < self._retry_at

    def failed(self, exc: BaseException) -> None:
        if not self._down:
            log.warning(
                "redis cache at %s failed (%s); answering from Personalize until it is back",
                self._where,
                type(exc).__name__ if isinstance(exc, TimeoutError) else exc,
            )
        self._down = True
        self._retry_at = time.monotonic() + _OUTAGE_PAUSE

    def recovered(self) -> None:
        if self._down:
            log.warning("redis cache at %s is back", self._where)
            self._down = False


class RedisStore:
    """Answers in a Redis shared by every replica, under `key_prefix`, expiring by Redis TTL."""

    def __init__(self, client: "Redis", settings: CacheSettings) -> None:
        self._client = client
        self._prefix = settings.key_prefix
        self._timeout = settings.redis_timeout
        url = urlsplit(settings.redis_url)
        # Never the whole URL in a log line: it may carry a password.
        self._outage = _Outage(url.path if url.scheme == "unix" else f"{url.hostname}:{url.port}")
        self._writes: set[asyncio.Task[None]] = set()

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: CacheSettings) -> AsyncIterator["RedisStore"]:
        """A store whose client is closed, pending writes given a moment, when the block ends."""
        client = Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout,
            socket_connect_timeout=settings.redis_timeout,
            # redis-py retries 10 times with backoff by default: a down Redis would then
            # hold every request for seconds. One try; a failure is a miss.
            retry=Retry(NoBackoff(), 0),
            max_connections=_MAX_CONNECTIONS,
        )
        store = cls(client, settings)
        try:
            await store.check()
            yield store
        finally:
            await store.aclose()

    async def check(self) -> bool:
        """Ping once at start-up; a Redis that is down is logged, never fatal."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            self._outage.failed(exc)
            return False
        return True

    async def get(self, request: RecommendationRequest, budget: float) -> Entry | None:
        if self._outage.skip() or budget <= 0:
            return None
        key = cache_key(request, self._prefix)
        timeout = min(self._timeout, budget)
        try:
            async with asyncio.timeout(timeout):
                raw = await self._client.get(key)
        except MaxConnectionsError:
            return None  # a burst, not an outage
        except TimeoutError as exc:
            # Cut short by the operation's own deadline: no fault of Redis's.
            if timeout >= self._timeout:
                self._outage.failed(exc)
            return None
        except (RedisError, OSError) as exc:
            self._outage.failed(exc)
            return None
        self._outage.recovered()
        if raw is None:
            return None
        try:
            return decode(raw)
        except ValueError as exc:
            log.warning("ignoring unreadable cache entry %s: %s", key, exc)
            return None

    def put(
        self, request: RecommendationRequest, result: RecommendationResult, keep: float
    ) -> None:
        if self._outage.skip() or len(self._writes) >= _MAX_PENDING_WRITES:
            return
        key = cache_key(request, self._prefix)
        value = encode(Entry(result, time.time()))
        task = asyncio.ensure_future(self._write(key, value, keep))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, key: str, value: bytes, keep: float) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.set(key, value, px=max(1, round(keep * 1000)))
        except MaxConnectionsError:
            return
        except (RedisError, OSError, TimeoutError) as exc:
            self._outage.failed(exc)
            return
        self._outage.recovered()

    async def aclose(self) -> None:
        if self._writes:
            await asyncio.wait(set(self._writes), timeout=self._timeout)
            for task in set(self._writes):
                task.cancel()
        await self._client.aclose()


@asynccontextmanager
async def open_store(settings: CacheSettings) -> AsyncIterator[AnswerStore]:
    """The configured store, open for the app's lifetime."""
    if settings.backend == "redis":
        async with RedisStore.open(settings) as store:
            yield store
    else:
        yield MemoryStore(settings.max_entries)


def _outcome(exc: BaseException) -> str:
    """A metric label for a failed call: the error's class, snake_cased (a bounded set)."""
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    if not isinstance(exc, SubgraphError):
        return "internal_error"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


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
            for outcome in ("hit", "miss", "stale"):
                self.lookups.labels(name, outcome)
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
        store: AnswerStore,
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
        """A fresh answer from the in-process store, found without awaiting anything.

        The hot path of a warm cache: the loader answers from here before it creates any
        task. Redis lookups (which wait) go through `recommend`.
        """
        if not self._enabled or not isinstance(self._store, MemoryStore):
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
                call.outcome = _outcome(exc)
                raise

    async def _timed_call(
        self, request: RecommendationRequest, deadline: float, keep: UseCaseSettings | None
    ) -> RecommendationResult:
        started = time.perf_counter()
        try:
            result = await self._backend.recommend(request, deadline)
        except BaseException as exc:
            outcome = _outcome(exc)
            self._metrics.calls.labels(request.use_case, outcome).inc()
            self._metrics.call_seconds.labels(request.use_case, outcome).observe(
                time.perf_counter() - started
            )
            raise
        calls, seconds = self._ok_counters(request.use_case)
        calls.inc()
        seconds.observe(time.perf_counter() - started)
        if keep is not None:
            self._store.put(request, result, keep.cache_ttl + keep.stale_ttl)
        return result
