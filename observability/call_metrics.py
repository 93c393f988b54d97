"""Prometheus counters of cache lookups, calls saved and Personalize calls made.

`CallMetrics` is what the cached backend reports to (it has the shape of
`backends.telemetry.CallObserver`, without importing it): server.py hands it in.
"""

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from observability.metrics import LATENCY_BUCKETS

_OK = "ok"


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
        self._hits: dict[str, tuple[Any, Any]] = {}
        self._answered: dict[str, tuple[Any, Any]] = {}
        # Every series from the start, so dashboards see zeros rather than gaps.
        for name in use_cases:
            for outcome in ("hit", "miss", "stale"):
                self.lookups.labels(name, outcome)
            for reason in ("cache", "coalesced"):
                self.saved.labels(name, reason)
            self.calls.labels(name, _OK)
            self.call_seconds.labels(name, _OK)

    def hit(self, use_case: str) -> None:
        hit, saved = self._hit_counters(use_case)
        hit.inc()
        saved.inc()

    def miss(self, use_case: str) -> None:
        self.lookups.labels(use_case, "miss").inc()

    def stale(self, use_case: str) -> None:
        self.lookups.labels(use_case, "stale").inc()

    def coalesced(self, use_case: str) -> None:
        self.saved.labels(use_case, "coalesced").inc()

    def called(self, use_case: str, outcome: str, seconds: float) -> None:
        if outcome == _OK:
            calls, latency = self._ok_counters(use_case)
        else:
            calls = self.calls.labels(use_case, outcome)
            latency = self.call_seconds.labels(use_case, outcome)
        calls.inc()
        latency.observe(seconds)

    def _hit_counters(self, use_case: str) -> tuple[Any, Any]:
        # labels() looks its child up under a lock each time; hits are the hot path.
        counters = self._hits.get(use_case)
        if counters is None:
            counters = (
                self.lookups.labels(use_case, "hit"),
                self.saved.labels(use_case, "cache"),
            )
            self._hits[use_case] = counters
        return counters

    def _ok_counters(self, use_case: str) -> tuple[Any, Any]:
        # Every successful call counts here: looked up once per use case, as for hits.
        counters = self._answered.get(use_case)
        if counters is None:
            counters = (
                self.calls.labels(use_case, _OK),
                self.call_seconds.labels(use_case, _OK),
            )
            self._answered[use_case] = counters
        return counters
