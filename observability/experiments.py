"""Experiment counters: exposures per experiment and variant, events per attribution source.

A variant's click-through rate is one PromQL division (README: Experiments):

    sum(rate(personalize_subgraph_attributed_events_total{source="HOME_HERO:campaign",
                                                          event_type="click"}[1d]))
      / sum(rate(personalize_subgraph_experiment_exposures_total{experiment="HOME_HERO",
                                                                variant="campaign"}[1d]))

Labels are bounded: experiments and variants come from configuration; a source that no
configured variant has is counted as "other", and event types (which clients name) keep
the first `MAX_EVENT_TYPES` seen, then "other".
"""

from prometheus_client import CollectorRegistry, Counter

from settings import Settings

OTHER = "other"
MAX_EVENT_TYPES = 50


class ExperimentMetrics:
    """`resolvers.experiments.ExperimentCounts`, on the app's registry."""

    def __init__(self, registry: CollectorRegistry, settings: Settings) -> None:
        self.exposures = Counter(
            "personalize_subgraph_experiment_exposures",
            "Lists answered for an experiment, by the variant the user was bucketed into "
            "(counted even when the variant's call failed and its fallback answered). "
            "`source` is the variant's attribution source.",
            ["experiment", "variant", "source"],
            registry=registry,
        )
        self.events = Counter(
            "personalize_subgraph_attributed_events",
            "Events recordEvents accepted with an attributionSource, by source (a "
            'configured variant\'s, else "other") and event type (the first 50, then "other").',
            ["source", "event_type"],
            registry=registry,
        )
        self._sources: dict[tuple[str, str], str] = {}
        for name, experiment in settings.experiments.items():
            for variant in experiment.variants:
                source = experiment.source(name, variant)
                self._sources[(name, variant)] = source
                self.exposures.labels(name, variant, source)
        self._known = frozenset(self._sources.values())
        self._types: set[str] = set()

    def exposed(self, experiment: str, variant: str) -> None:
        source = self._sources.get((experiment, variant), OTHER)
        self.exposures.labels(experiment, variant, source).inc()

    def attributed(self, source: str, event_type: str) -> None:
        label = source if source in self._known else OTHER
        self.events.labels(label, self._event_type(event_type)).inc()

    def _event_type(self, event_type: str) -> str:
        if event_type in self._types:
            return event_type
        if len(self._types) >= MAX_EVENT_TYPES or len(event_type) > 100:
            return OTHER
        self._types.add(event_type)
        return event_type
