"""An experiment's readout: per variant, exposures, events by type, the event rate with
its 95 % interval, and the difference to the control with its interval.

    python -m observability.readout --metrics http://127.0.0.1:4001/metrics [--event-type click]
    make readout                     # the same, against `make serve` on the demo

It reads the counters of a running subgraph's /metrics
(`personalize_subgraph_experiment_exposures_total`, `..._attributed_events_total`;
`observability.experiments`); `--metrics-file` reads a saved scrape instead. With
`--engine URL` (the emulator or engine process, `python -m local_personalize serve`)
the events come from what the engine itself recorded by attribution source, as
Personalize's metric attributions would report them; the exposures still come from
/metrics. With several workers or replicas, sum their scrapes first (or read Prometheus).

The statistics, for a rate x / n (events of the chosen type per exposure):

- Wilson's score interval for one rate: the centre (x + z²/2) / (n + z²), half-width
  z·sqrt(x(n-x)/n + z²/4) / (n + z²), z = 1.96. Unlike the normal approximation it
  stays inside [0, 1] and holds for small counts.
- Newcombe's hybrid score interval (his method 10) for the difference d = p₁ - p₀ of a
  variant to the control: [d - sqrt((p₁-l₁)² + (u₀-p₀)²), d + sqrt((u₁-p₁)² + (p₀-l₀)²)],
  from each rate's Wilson interval (l, u). An interval that excludes 0 says the variant
  differs from the control at the 5 % level (one comparison; with many variants or
  repeated looks, be stricter).

A rate above 1 (users who act more than once per exposure) is not a proportion: its
row shows the rate and no interval. The control is the experiment's first variant in
the configuration (SUBGRAPH_CONFIG; `--control` overrides), else one named "control".
"""

import argparse
import json
import math
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from domain.errors import ConfigurationError
from settings import load_settings

Z95 = 1.959963984540054
EXPOSURES = "personalize_subgraph_experiment_exposures"
EVENTS = "personalize_subgraph_attributed_events"


def wilson(x: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for the proportion x / n (0 <= x <= n, n > 0)."""
    if n <= 0 or not 0 <= x <= n:
        raise ValueError("a proportion needs 0 <= x <= n and n > 0")
    centre = (x + z * z / 2) / (n + z * z)
    half = z * math.sqrt(x * (n - x) / n + z * z / 4) / (n + z * z)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(
    x1: float, n1: float, x0: float, n0: float, z: float = Z95
) -> tuple[float, float, float]:
    """(difference, low, high) of p1 - p0 by Newcombe's hybrid score interval."""
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1, z)
    l0, u0 = wilson(x0, n0, z)
    d = p1 - p0
    return d, d - math.hypot(p1 - l1, u0 - p0), d + math.hypot(u1 - p1, p0 - l0)


@dataclass
class Variant:
    name: str
    source: str
    exposures: float = 0.0
    events: dict[str, float] = field(default_factory=dict)


def read_counts(
    text: str, engine_events: dict[str, dict[str, float]] | None = None
) -> dict[str, list[Variant]]:
    """Experiment -> its variants (in the order scraped), from a /metrics text; the
    events by source and type from `engine_events` instead, when given."""
    experiments: dict[str, list[Variant]] = {}
    by_source: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == f"{EXPOSURES}_total":
                variants = experiments.setdefault(labels["experiment"], [])
                variant = next((v for v in variants if v.name == labels["variant"]), None)
                if variant is None:
                    variant = Variant(labels["variant"], labels["source"])
                    variants.append(variant)
                variant.exposures += sample.value
            elif sample.name == f"{EVENTS}_total":
                types = by_source.setdefault(labels["source"], {})
                kind = labels["event_type"]
                types[kind] = types.get(kind, 0.0) + sample.value
    if engine_events is not None:
        by_source = engine_events
    for variants in experiments.values():
        for variant in variants:
            variant.events = dict(sorted(by_source.get(variant.source, {}).items()))
    return experiments


def _percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def _rate(variant: Variant, event_type: str) -> tuple[str, tuple[float, float] | None]:
    n, x = variant.exposures, variant.events.get(event_type, 0.0)
    if n <= 0:
        return "-", None
    if x > n:
        return f"{_percent(x / n)} (no interval: above 1 per exposure)", None
    low, high = wilson(x, n)
    return f"{_percent(x / n)} [{_percent(low)}, {_percent(high)}]", (low, high)


def report(
    experiment: str, variants: Sequence[Variant], control: str | None, event_type: str
) -> str:
    """The readout of one experiment, as printed."""
    chosen = control if any(v.name == control for v in variants) else None
    if chosen is None:
        named = [v.name for v in variants if v.name == "control"]
        chosen = named[0] if named else variants[0].name
    base = next(v for v in variants if v.name == chosen)
    types = sorted({t for v in variants for t in v.events})
    lines = [f"experiment {experiment}: rate = {event_type} events per exposure; control {chosen}"]
    head = ["variant", "exposures", *types, f"{event_type} rate [95% CI]", "vs control [95% CI]"]
    rows = [head]
    for variant in variants:
        rate, _ = _rate(variant, event_type)
        versus = "-"
        x1, n1 = variant.events.get(event_type, 0.0), variant.exposures
        x0, n0 = base.events.get(event_type, 0.0), base.exposures
        proportions = n1 > 0 and n0 > 0 and x1 <= n1 and x0 <= n0
        if variant is not base and proportions:
            d, low, high = newcombe(x1, n1, x0, n0)
            verdict = "differs" if low > 0 or high < 0 else "no clear difference"
            versus = f"{100 * d:+.2f} pp [{100 * low:+.2f}, {100 * high:+.2f}] {verdict}"
        counts = [f"{variant.events.get(t, 0.0):.0f}" for t in types]
        rows.append([variant.name, f"{variant.exposures:.0f}", *counts, rate, versus])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def _controls() -> dict[str, str]:
    try:
        settings = load_settings()
    except ConfigurationError:
        return {}
    return {name: e.control for name, e in settings.experiments.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m observability.readout", description=__doc__.split("\n\n")[0]
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--metrics", help="a running subgraph's /metrics URL")
    where.add_argument("--metrics-file", help="a saved /metrics scrape")
    parser.add_argument("--engine", help="events from this engine's /_emulator/events")
    parser.add_argument("--event-type", default="click", help="the event the rate counts")
    parser.add_argument("--experiment", help="only this experiment")
    parser.add_argument("--control", help="the control variant (default: the configured one)")
    args = parser.parse_args(argv)
    try:
        if args.metrics is not None:
            with urllib.request.urlopen(args.metrics, timeout=10) as response:
                text = response.read().decode()
        else:
            with open(args.metrics_file, encoding="utf-8") as file:
                text = file.read()
        engine_events = None
        if args.engine is not None:
            url = f"{args.engine.rstrip('/')}/_emulator/events"
            with urllib.request.urlopen(url, timeout=10) as response:
                engine_events = json.loads(response.read())["attributed"]
    except OSError as exc:
        print(f"readout: cannot read the counts: {exc}", file=sys.stderr)
        return 2
    experiments = read_counts(text, engine_events)
    if args.experiment is not None:
        experiments = {k: v for k, v in experiments.items() if k == args.experiment}
    if not experiments:
        print("readout: no experiment exposures in these metrics", file=sys.stderr)
        return 1
    controls = _controls()
    blocks = [
        report(name, variants, args.control or controls.get(name), args.event_type)
        for name, variants in experiments.items()
    ]
    print("\n\n".join(blocks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
