"""Prometheus metrics of GraphQL operations, loader batches and circuit breakers.

Everything is registered on the app's own `CollectorRegistry` (served at /metrics), never
on the process-wide default, so several apps in one process never collide. Labels are
bounded: operation names are capped, use cases and outcomes come from fixed sets.
The Personalize call and cache metrics are `observability.call_metrics`.

Breakers and the event queue are read at scrape time through the small protocols
below, which the backends' own classes satisfy as they are: nothing here imports them.
"""

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from domain.breaker import BreakerState

# Seconds; Personalize answers in tens of milliseconds, a deadline is a few seconds.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
# Distinct keys per dispatched loader batch; an `_entities` batch can hold hundreds.
BATCH_BUCKETS = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500)
# Distinct operation names kept as label values per process; later ones are "other".
MAX_OPERATION_NAMES = 100
ANONYMOUS = "anonymous"
OTHER = "other"
OUTCOMES = ("ok", "errors", "request_error")
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")
# A breaker's state as its gauge value; a breaker not listed at all is closed.
_BREAKER_VALUES = {BreakerState.CLOSED: 0.0, BreakerState.HALF_OPEN: 1.0, BreakerState.OPEN: 2.0}


class BreakerStates(Protocol):
    """The breakers of the process (`backends.guard.Breakers`), as far as a scrape needs."""

    def states(self) -> Mapping[str, BreakerState]:
        """ARN -> its breaker's state; an ARN not listed is closed."""
        ...


class EventTally(Protocol):
    """How many events met each fate so far (`backends.events.EventCounts`)."""

    @property
    def accepted(self) -> int: ...
    @property
    def delivered(self) -> int: ...
    @property
    def rejected(self) -> int: ...
    @property
    def refused(self) -> int: ...
    @property
    def retries(self) -> int: ...


class EventQueue(Protocol):
    """The process's event sender (`backends.events.EventSender`), as a scrape sees it."""

    @property
    def counts(self) -> EventTally: ...
    @property
    def depth(self) -> int: ...
    @property
    def oldest_age(self) -> float: ...
    @property
    def dead_letters(self) -> int: ...


def is_operation_name(name: str | None) -> bool:
    """Whether `name` is a GraphQL name of at most 100 characters (clients send anything)."""
    return bool(name) and _NAME.fullmatch(name or "") is not None


class OperationNames:
    """Operation names as label values: the first `limit` distinct ones, then "other".

    Names come from clients, so they are bounded twice: only GraphQL names of at most 100
    characters are kept (anything else, or none, is "anonymous"), and only so many.
    """

    def __init__(self, limit: int = MAX_OPERATION_NAMES) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def label(self, name: str | None) -> str:
        if name is None or not is_operation_name(name):
            return ANONYMOUS
        if name in self._seen:
            return name
        if len(self._seen) >= self._limit:
            return OTHER
        self._seen.add(name)
        return name


class OperationMetrics:
    """GraphQL operations by name and outcome, and how long they took."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.names = OperationNames()
        self.operations = Counter(
            "personalize_subgraph_graphql_operations",
            "GraphQL operations by operation name (bounded) and outcome: ok, errors (some "
            "fields failed), request_error (nothing ran: bad HTTP request, parse, validation).",
            ["operation", "outcome"],
            registry=registry,
        )
        self.seconds = Histogram(
            "personalize_subgraph_graphql_operation_seconds",
            "Time from the request reaching /graphql to the response being ready.",
            ["operation", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_sizes = Histogram(
            "personalize_subgraph_loader_batch_size",
            "Distinct recommendation requests per dispatched loader batch (answers found "
            "in the in-process cache never reach a batch).",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        # (name as sent, outcome) -> its two series: labels() takes a lock and the name
        # check a regex, per request otherwise. Bounded like the names themselves.
        self._series: dict[tuple[str | None, str], tuple[Any, Any]] = {}
        for outcome in OUTCOMES:
            self.operations.labels(ANONYMOUS, outcome)

    def observe(self, name: str | None, outcome: str, seconds: float) -> None:
        series = self._series.get((name, outcome))
        if series is None:
            label = self.names.label(name)
            series = (self.operations.labels(label, outcome), self.seconds.labels(label, outcome))
            # Only short names are remembered: the key is the name as sent, and a
            # client could otherwise park megabyte-long names here.
            short = name is None or len(name) <= 128
            if short and len(self._series) < 4 * MAX_OPERATION_NAMES * len(OUTCOMES):
                self._series[(name, outcome)] = series
        count, seconds_ = series
        count.inc()
        seconds_.observe(seconds)


class BreakerCollector(Collector):
    """The breaker state of every configured use case, read at scrape time.

    0 closed, 1 half-open (one probe in flight), 2 open (calls refused). Breakers are
    kept per ARN; use cases sharing an ARN report the same state.
    """

    def __init__(self, arns: Mapping[str, str], breakers: BreakerStates) -> None:
        self._arns = dict(arns)
        self._breakers = breakers

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Nothing to check for clashes at registration; collect() reads live state.
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        states = self._breakers.states()
        gauge = GaugeMetricFamily(
            "personalize_subgraph_breaker_state",
            "Circuit breaker per use case (its ARN's): 0 closed, 1 half-open, 2 open.",
            labels=["use_case"],
        )
        for use_case, arn in self._arns.items():
            state = states.get(arn, BreakerState.CLOSED)
            gauge.add_metric([use_case], _BREAKER_VALUES[state])
        yield gauge


class EventsCollector(Collector):
    """What became of recordEvents' events, read from the process's sender at scrape time."""

    def __init__(self, sender: EventQueue) -> None:
        self._sender = sender

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        sender = self._sender
        counts = sender.counts
        events = CounterMetricFamily(
            "personalize_subgraph_events",
            "Events of recordEvents by fate: accepted (stored), delivered, rejected "
            "(Personalize refused them for good; dead letters), refused (the client "
            "was told EVENTS_QUEUE_FULL).",
            labels=["fate"],
        )
        for fate in ("accepted", "delivered", "rejected", "refused"):
            events.add_metric([fate], getattr(counts, fate))
        yield events
        yield CounterMetricFamily(
            "personalize_subgraph_event_retries",
            "PutEvents attempts retried after throttling or a server-side failure.",
            value=counts.retries,
        )
        yield GaugeMetricFamily(
            "personalize_subgraph_event_queue_depth",
            "Event batches waiting for delivery (the one being sent included).",
            value=sender.depth,
        )
        yield GaugeMetricFamily(
            "personalize_subgraph_event_oldest_age_seconds",
            "How long the oldest event batch this process holds has waited (0: none).",
            value=sender.oldest_age,
        )
        yield GaugeMetricFamily(
            "personalize_subgraph_event_dead_letters",
            "Event batches Personalize refused for good, kept in the outbox's dead letters "
            "(`python -m backends.outbox dead-letters`).",
            value=sender.dead_letters,
        )


class RefusalsCollector(Collector):
    """Connections refused at the HTTP edge (web/connections.py), by code, at scrape time."""

    def __init__(self, totals: Callable[[], Mapping[str, int]], codes: Iterable[str]) -> None:
        self._totals = totals
        self._codes = tuple(codes)

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        refused = CounterMetricFamily(
            "personalize_subgraph_connections_refused",
            "Connections refused before a request reached the app, by the code of the "
            "coded JSON answer (REQUEST_TIMEOUT, TOO_MANY_CONNECTIONS...).",
            labels=["code"],
        )
        totals = self._totals()
        for code in self._codes:
            refused.add_metric([code], totals.get(code, 0))
        yield refused
